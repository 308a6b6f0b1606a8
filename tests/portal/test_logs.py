"""A portal link's token is the client's credential: it never reaches a log, whether the
application logs a failed request's path, the development server a request line, or
gunicorn its access log; nor do the values a client sends."""

import logging
from datetime import timedelta
from types import SimpleNamespace

from gunicorn.config import Config

from kiosk.core.logredact import GunicornLogger, path_redacted

from .conftest import filled

TOKEN = "ImMzMWZhNTY0LWQ2NWQtNGU0Ni04ZjNjLWVjN2VmMWJjZTVhOCI.XHj0kA.94XldsMLO8MyT7rfdXnJef"


def test_paths_lose_their_token_and_keep_the_rest():
    assert path_redacted(f"GET /portal/{TOKEN}/form/abc?x=1 HTTP/1.1") == \
        "GET /portal/[link]/form/abc?x=1 HTTP/1.1"
    assert path_redacted(f"http://h/portal/{TOKEN}") == "http://h/portal/[link]"
    assert path_redacted("GET /patients/1/forms HTTP/1.1") == "GET /patients/1/forms HTTP/1.1"


def test_a_pages_requests_log_neither_the_token_nor_the_values(app, client, asked, caplog):
    _, token = asked
    caplog.set_level(logging.DEBUG)
    client.get(f"/portal/{token}")
    client.post(f"/portal/{token}/form", data=filled(weight="heavy"))
    client.post(f"/portal/{token}/form", data=filled())
    client.post(f"/portal/{token}/form", data=filled())
    app.logger.error("Exception on /portal/%s/form [POST]", token)  # as Flask logs a failure
    logging.getLogger("werkzeug").info('127.0.0.1 - - "GET /portal/%s HTTP/1.1" 200 -', token)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Exception on /portal/[link]/form [POST]" in logged
    assert '"GET /portal/[link] HTTP/1.1"' in logged
    assert token not in logged and "Well, twice a day" not in logged


def test_gunicorns_access_log_is_redacted():
    logger = GunicornLogger(Config())
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/portal/{TOKEN}/form",
               "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": f"/portal/{TOKEN}/form",
               "QUERY_STRING": "", "REMOTE_ADDR": "203.0.113.9"}
    response = SimpleNamespace(status="303 SEE OTHER", sent=0,
                               headers=[("Location", f"/portal/{TOKEN}/form")])
    atoms = logger.atoms(response, SimpleNamespace(headers=[]), environ,
                         timedelta(milliseconds=5))
    assert atoms["r"] == "GET /portal/[link]/form HTTP/1.1"
    assert atoms["U"] == "/portal/[link]/form" and atoms["h"] == "203.0.113.9"
    assert TOKEN not in str(atoms)
