"""The event contract of chiso766: typed events, JSON Schema files, and a decoder with clear errors."""

from schemas.decode import Rejection, decode, decode_message
from schemas.events import EVENT_TYPES, Event, entity_key

__all__ = ["EVENT_TYPES", "Event", "Rejection", "decode", "decode_message", "entity_key"]
