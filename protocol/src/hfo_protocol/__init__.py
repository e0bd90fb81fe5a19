"""Wire formats shared by the watchdog (lambda/), the health service and the site agent.

Standard library only, so it can ride inside the Lambda zip and the site image alike.
See docs/protocol.md for the normative description; this package is its executable form.
"""

from hfo_protocol.errors import ProtocolError, SignatureError
from hfo_protocol.keys import Keyring
from hfo_protocol.signing import SIGNATURE_HEADER, sign, verify

PROTOCOL_VERSION = 1
SITES = ("primary", "standby")

__all__ = [
    "PROTOCOL_VERSION",
    "SIGNATURE_HEADER",
    "SITES",
    "Keyring",
    "ProtocolError",
    "SignatureError",
    "sign",
    "verify",
]
