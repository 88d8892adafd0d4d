"""A throwaway RSA key pair for the DKIM tests (made with ``openssl genrsa 1024``; it signs
nothing real). The public half is what the selector's DNS TXT record would hold."""

PRIVATE_KEY = b"""-----BEGIN RSA PRIVATE KEY-----
MIICXgIBAAKBgQDb6e5LZTPJHh+VeWUtgtMvcTbP+TmpkRKPnDnkQauNzsxealmo
49lWWUhnNqYUQH8CuO8JaY/RXfzZAH2XvWLI7H9t4fhSfBUPzvtA6EXBe7udC9dm
EyJ3QzTf4mpsbECbrN6gr2oE65nrAxOY/TNx3dHCBhyDUVYjIIlgn4OqcQIDAQAB
AoGBANa/5CHgG+fj8LfIqhL9VDlZ90q0d6issFFpH+dUcbCzJ0Nz20Zf6ha2bUvN
Q/U23lDMQzEP0o+DlqxaHEsXd+QqEa00gY7K8wxLEY/kcDr5L3LjTiCoNlZkqIdZ
Kq8DS3eQWunZTuFaZGLqdXloYaU4ETFJwE2ymkdL/mctkaUZAkEA71seHD3DqyXT
jA7M2X6KjxGWIWpIogWi2/w69IWUNJxvzKCRsU5K77fIu1QM/rLiAkR4SnBLn3TB
6ibhtxP3CwJBAOs0twv/+ImUtzFbDY77UIUE7PGjbcl4rZsjorTYEUZ0scjrdpIq
gBS9vEw195L3dIvBeeoyIMEnKIeSjnn/YfMCQQDJfkkQuSX487TsWKE2DoKSAdoC
cziFvHzm96Shp7mluHOdLSa4vhHzTyGaIR13ZBtCkWU6NOJUb7O2a9jjh9kVAkAr
PiDdOu1l1gqsL1JZ1EikfBhYALUBkodQe4fBeewLKQ86olfFXbz4kz2YQV/IDGjH
/QU+EoNFH77q1f4N3e8TAkEAh79JU9w18cEiVHQploZEtfIAJ5mVyNN993nKXubJ
iycuAPnjrGg6ryN6YEflmoubqAEEbL1vrIYWc3l3kBxqPQ==
-----END RSA PRIVATE KEY-----
"""

PUBLIC_KEY_B64 = (
    b"MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDb6e5LZTPJHh+VeWUtgtMvcTbP+TmpkRKPnDnkQauN"
    b"zsxealmo49lWWUhnNqYUQH8CuO8JaY/RXfzZAH2XvWLI7H9t4fhSfBUPzvtA6EXBe7udC9dmEyJ3QzTf"
    b"4mpsbECbrN6gr2oE65nrAxOY/TNx3dHCBhyDUVYjIIlgn4OqcQIDAQAB"
)

DNS_RECORD = b"v=DKIM1; k=rsa; p=" + PUBLIC_KEY_B64


def dns(name, timeout=5):
    """dkimpy's ``dnsfunc``: every selector answers with the test key."""
    return DNS_RECORD
