"""kombu's filesystem transport, with messages written atomically.

kombu's own ``filesystem://`` transport creates each message file in the queue folder and
then writes it; a worker polling that folder can take the file while it is still empty
and die on ``JSONDecodeError``. This transport writes to a hidden temporary file and
renames it into place, so a reader sees a whole message or none. For the embedded,
server-less default only; use Redis or RabbitMQ in production.

    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT = "django_async_email.contrib.filesystem_broker:Transport"
"""

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    # kombu's filesystem Channel._put signature, which kombu's stubs also exempt from the base class's.
    def _put(self, queue, payload, **kwargs):  # type: ignore[override]  # matches kombu's own override
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # A leading dot: the reader's name filter ("<anything>.<queue>.msg") skips it.
        temporary = os.path.join(self.data_folder_out, f".{name}.tmp")
        try:
            with open(temporary, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(temporary, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
