"""The HTTP API, one APIRouter per resource: ``general`` (health, me), ``songs``, ``voices``,
``jobs`` (and the queue view), ``worker`` (the endpoints remote workers use) and ``ui``."""
