"""An answer given before the body is read still reaches the client whole (real gunicorn).

The client here sends the whole body before it reads the answer, as a proxy streaming a request
(nginx with request buffering off) may.  If the service closed the connection with the body
unread, the kernel would reset it: the send fails, or the answer is lost, and behind nginx the
client gets a 502.  The service reads what is left of the body once it has answered.
"""

from __future__ import annotations

import json
import socket

import pytest

from redfile_dev.testing import auth_header, make_settings, user_token
from redfile_files.settings import FilesSettings

MIB = 1024 * 1024


def send_whole_then_read(port: int, head: bytes, body_size: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        piece = b"x" * MIB
        for _ in range(body_size // MIB):
            sock.sendall(piece)  # raises ConnectionResetError / BrokenPipeError if the server reset the connection
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@pytest.mark.parametrize(
    ("path", "size_mib", "token", "status", "code"),
    [
        ("/upload_chunk?chunk_index=0&total_chunks=1", 12, True, 413, "payload_too_large"),  # over the service's body limit
        ("/uploads/" + "a" * 32 + "/chunks/0", 8, True, 404, "upload_not_found"),  # a chunk for no upload: refused unread
        ("/upload_chunk?chunk_index=0&total_chunks=1", 8, False, 401, "unauthorized"),  # no token
    ],
    ids=["413", "404", "401"],
)
def test_an_early_answer_reaches_a_client_that_sends_the_whole_body_first(
    redis_url, redis_client, gunicorn, path, size_mib, token, status, code
):
    (files,) = gunicorn("files", redis_url)
    headers = auth_header(user_token(make_settings(FilesSettings, redis_url), redis_client, "alice")) if token else {}
    method = "PUT" if "/chunks/" in path else "POST"
    size = size_mib * MIB
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/octet-stream", f"Content-Length: {size}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    answer = send_whole_then_read(files.port, head, size)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == str(status).encode(), status_line
    body = rest.partition(b"\r\n\r\n")[2]
    assert json.loads(body)["error"]["code"] == code


def test_a_client_that_leaves_while_its_refused_body_is_read_leaves_no_error(redis_url, gunicorn):
    """The client reads the early answer and ends its side mid-body: reading the rest stops quietly, not with a
    ClientDisconnected traceback at error level in the service's log (seen on Ctrl-C under load)."""
    (files,) = gunicorn("files", redis_url, LOG_LEVEL="INFO")
    head = b"POST /upload_chunk?chunk_index=0&total_chunks=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 8000000\r\n\r\n"
    with socket.create_connection(("127.0.0.1", files.port), timeout=30) as sock:
        sock.sendall(head + b"x" * MIB)
        answer = sock.recv(65536)
        sock.shutdown(socket.SHUT_WR)  # the body ends 7 MB short
        while sock.recv(65536):  # the service closes the connection once it has stopped reading
            pass
    assert b" 401 " in answer.partition(b"\r\n")[0]  # no token: answered before the body is read
    log = files.log_path.read_text(errors="replace")
    assert '"status": 401' in log
    assert '"level": "error"' not in log, log[-3000:]
