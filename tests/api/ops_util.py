"""Shared by the ops tests (backup, webhooks, admin dashboard): a module-scoped server's life."""


def serve_module(db_factory, s):
    """For a module-scoped fixture: `yield from serve_module(db_factory, server)` starts server (unless it
    runs already), yields it, and at the end checks it exits 0 on SIGTERM with no sanitizer report."""
    if not s.alive():
        s.start()
    try:
        yield s
    finally:
        rc = s.stop()
        log = s.log_text()
        reports = s.sanitizer_reports()
        s.cleanup()
        db_factory.drop(s.db_url)
    assert rc == 0, log[-4000:]
    assert not reports, reports
