"""Tripletex API v2 client (async httpx, free of Temporal). See ``client.py`` for the retry policy."""

from accounting.tripletex.client import JSON_CONTENT_TYPE, ListPage, TripletexClient, encode_json
from accounting.tripletex.errors import (
    TripletexAuthError,
    TripletexConflictError,
    TripletexError,
    TripletexNotFoundError,
    TripletexRateLimitedError,
    TripletexServerError,
    TripletexTransportError,
    TripletexValidationError,
    ValidationMessage,
)

__all__ = [
    "JSON_CONTENT_TYPE",
    "ListPage",
    "TripletexAuthError",
    "TripletexClient",
    "TripletexConflictError",
    "TripletexError",
    "TripletexNotFoundError",
    "TripletexRateLimitedError",
    "TripletexServerError",
    "TripletexTransportError",
    "TripletexValidationError",
    "ValidationMessage",
    "encode_json",
]
