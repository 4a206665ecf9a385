"""The HTTP API, one APIRouter per resource: ``general`` (health, me), ``songs``, ``voices``,
``jobs`` (and the queue view), ``worker`` (the endpoints remote workers use) and ``ui``.

Each module's ``router()`` builds its APIRouter when the app is built
(:func:`aisinger.service.app.create_app`), importing FastAPI there: the ``aisinger`` command
imports the service package (``aisinger serve``) and must not load FastAPI (~0.3 s) for every
other command.  These modules do not use ``from __future__ import annotations``, because
FastAPI reads the route functions' annotations (``request: Request``, the body models) when
they are defined inside ``router()``.
"""
