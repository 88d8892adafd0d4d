"""The embedded broker's transport writes each message atomically."""

import json
import os
import threading

from kombu import Connection


def test_a_reader_never_sees_a_partial_message(tmp_path):
    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path),
               "control_folder": str(tmp_path / "control")}
    url = "filesystem://"
    transport = "django_async_email.contrib.filesystem_broker:Transport"
    payload = {"body": "x" * 200_000}
    seen_partial = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            for name in os.listdir(tmp_path):
                if name.endswith(".q.msg") and not name.startswith("."):
                    try:
                        data = (tmp_path / name).read_bytes()
                    except FileNotFoundError:
                        continue
                    try:
                        json.loads(data)
                    except ValueError:
                        seen_partial.append(name)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        with Connection(url, transport=transport, transport_options=options) as connection:
            queue = connection.SimpleQueue("q")
            for _ in range(50):
                queue.put(payload)
            received = [queue.get(timeout=5) for _ in range(50)]
            for message in received:
                message.ack()
            queue.close()
    finally:
        stop.set()
        thread.join()
    assert seen_partial == []
    assert len(received) == 50 and received[0].payload == payload
