"""Inline reconstruction at the scanner: an ISMRMRD streaming server and client.

* :mod:`.protocol` — the message protocol of python-ismrmrd-server / FIRE / Gadgetron
  clients (framing, size limits);
* :mod:`.session` — one connection: acquisitions -> slices, as the file reader assembles them;
* :mod:`.reconstructor` — the network or method shared by every connection (``recon``'s
  reconstruction, one slice at a time);
* :mod:`.images` — reconstructed slices as MRD images and back;
* :mod:`.server` — the threaded TCP server (:class:`MRDServer`);
* :mod:`.client` — streaming a raw file and collecting the images.

See ``docs/serving.md``.
"""
from .client import DEFAULT_CONFIG, RawScan, StreamResult, load_scan, parse_address, stream_scan
from .images import IMAGE_TYPES, ReceivedImage, volume_of
from .protocol import MessageID, ProtocolError, StreamLimits, read_message
from .reconstructor import ReconSettings, Reconstructor
from .server import LOGGER, MRDServer, is_loopback, serve_connection
from .session import StreamSession

__all__ = ["DEFAULT_CONFIG", "RawScan", "StreamResult", "load_scan", "parse_address",
           "stream_scan", "IMAGE_TYPES", "ReceivedImage", "volume_of", "MessageID",
           "ProtocolError", "StreamLimits", "read_message", "ReconSettings", "Reconstructor",
           "LOGGER", "MRDServer", "is_loopback", "serve_connection", "StreamSession"]
