"""Starts a throw-away Synapse on 127.0.0.1 for the real-homeserver tests, and stops it.

Run with the Python of `.venv-synapse` (made by `.ci/setup-synapse.sh`):

    .venv-synapse/bin/python3 tests/peers/synapse_server.py --users alice,bob

It makes a fresh temporary directory, generates a configuration there and edits it (one client
listener on 127.0.0.1 and a free port, SQLite, no federation, no URL previews, every rate limit
raised out of reach), starts Synapse in its own process group, waits until the Client-Server API
answers, registers the users through the shared-secret admin API and prints one JSON line:

    {"base_url": "http://127.0.0.1:PORT", "server_name": "localhost",
     "users": {"alice": "PASSWORD", ...}, "pid": PID, "dir": TMPDIR}

Then it waits. When its stdin closes (the test dropped it, or the test process died) or on
SIGTERM/SIGINT/SIGHUP it kills Synapse's process group and deletes the directory. Synapse also
gets SIGKILL if this launcher dies without cleaning up (PR_SET_PDEATHSIG).
"""

import argparse
import ctypes
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

SERVER_NAME = "localhost"
# Far beyond anything a test does: no test may be slowed or refused by a rate limit.
HIGH = {"per_second": 100000, "burst_count": 1000000}
RATE_LIMITS = {
    "rc_message": HIGH,
    "rc_registration": HIGH,
    "rc_registration_token_validity": HIGH,
    "rc_login": {"address": HIGH, "account": HIGH, "failed_attempts": HIGH},
    "rc_admin_redaction": HIGH,
    "rc_joins": {"local": HIGH, "remote": HIGH},
    "rc_joins_per_room": HIGH,
    "rc_key_requests": HIGH,
    "rc_3pid_validation": HIGH,
    "rc_invites": {"per_room": HIGH, "per_user": HIGH, "per_issuer": HIGH},
    "rc_third_party_invite": HIGH,
    "rc_media_create": HIGH,
    "rc_presence": {"per_user": HIGH},
    "rc_delayed_event_mgmt": HIGH,
    "rc_room_creation": HIGH,
    "rc_reports": HIGH,
    "rc_user_directory": HIGH,
    "rc_profile": HIGH,
}
PR_SET_PDEATHSIG = 1


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def generate_config(workdir, port, shared_secret, room_version):
    config_path = os.path.join(workdir, "homeserver.yaml")
    subprocess.run(
        [
            sys.executable, "-m", "synapse.app.homeserver",
            "--server-name", SERVER_NAME,
            "--report-stats=no",
            "--config-path", config_path,
            "--config-directory", workdir,
            "--data-directory", workdir,
            "--generate-config",
        ],
        # The generated log config logs to homeserver.log in the current directory.
        cwd=workdir,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    with open(config_path) as f:
        config = yaml.safe_load(f)
    config.update(RATE_LIMITS)
    config.update(
        {
            "listeners": [
                {
                    "port": port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {
                "name": "sqlite3",
                "args": {"database": os.path.join(workdir, "homeserver.db")},
            },
            "registration_shared_secret": shared_secret,
            "enable_registration": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "url_preview_enabled": False,
            "report_stats": False,
            "enable_metrics": False,
            "presence": {"enabled": False},
            "public_baseurl": "http://127.0.0.1:%d/" % port,
        }
    )
    if room_version:
        config["default_room_version"] = room_version
    with open(config_path, "w") as f:
        yaml.safe_dump(config, f)
    # Synapse's generated log config writes INFO to a file in workdir; warnings are enough.
    log_config = config.get("log_config")
    if log_config and os.path.exists(log_config):
        with open(log_config) as f:
            text = f.read()
        with open(log_config, "w") as f:
            f.write(text.replace("level: INFO", "level: WARNING"))
    # --generate-config already wrote the signing key; a separate --generate-keys run would
    # only cost another 1.5 s of imports.
    return config_path


def die_with_parent():
    """In the Synapse child: its own process group, and SIGKILL when the launcher dies."""
    os.setsid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def http_json(method, url, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def listener_port(config_path):
    with open(config_path) as f:
        return yaml.safe_load(f)["listeners"][0]["port"]


def set_port(config_path, port):
    with open(config_path) as f:
        config = yaml.safe_load(f)
    config["listeners"][0]["port"] = port
    config["public_baseurl"] = "http://127.0.0.1:%d/" % port
    with open(config_path, "w") as f:
        yaml.safe_dump(config, f)
    return port


class SynapseExited(RuntimeError):
    pass


def wait_ready(base_url, proc, timeout_s, log_path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SynapseExited("synapse exited with %s; log:\n%s" % (proc.returncode, tail(log_path)))
        try:
            http_json("GET", base_url + "/_matrix/client/versions", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise RuntimeError("synapse not ready after %ss; log:\n%s" % (timeout_s, tail(log_path)))


def tail(path, lines=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "<no log>"


def register(base_url, shared_secret, username, password):
    """The shared-secret admin registration: a nonce, then an HMAC-SHA1 over it and the user."""
    url = base_url + "/_synapse/admin/v1/register"
    nonce = http_json("GET", url)["nonce"]
    message = b"\x00".join(part.encode() for part in (nonce, username, password, "notadmin"))
    mac = hmac.new(shared_secret.encode(), message, hashlib.sha1)
    body = {
        "nonce": nonce,
        "username": username,
        "password": password,
        "admin": False,
        "mac": mac.hexdigest(),
        # No device for the registration itself: only the person's logins make devices.
        "inhibit_login": True,
    }
    return http_json("POST", url, body)["user_id"]


class Server:
    def __init__(self):
        self.proc = None
        self.workdir = None

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        workdir, self.workdir = self.workdir, None
        if workdir is not None and not os.environ.get("SYNAPSE_KEEP_DIR"):
            shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="alice,bob", help="comma-separated localparts")
    parser.add_argument("--room-version", default="", help="default_room_version (Synapse's own if empty)")
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    args = parser.parse_args()
    users = [u for u in args.users.split(",") if u]

    server = Server()

    def on_signal(signum, _frame):
        server.stop()
        os._exit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)

    try:
        server.workdir = tempfile.mkdtemp(prefix="olmo-synapse-")
        shared_secret = secrets.token_hex(16)
        config_path = generate_config(server.workdir, free_port(), shared_secret, args.room_version)
        log_path = os.path.join(server.workdir, "stderr.log")
        # The free port can be taken by another process before Synapse binds it: then Synapse
        # exits, and another port is tried.
        for attempt in range(3):
            port = set_port(config_path, free_port()) if attempt else listener_port(config_path)
            base_url = "http://127.0.0.1:%d" % port
            with open(log_path, "ab") as log:
                server.proc = subprocess.Popen(
                    [sys.executable, "-m", "synapse.app.homeserver", "-c", config_path],
                    cwd=server.workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=die_with_parent,
                )
            try:
                wait_ready(base_url, server.proc, args.ready_timeout, log_path)
                break
            except SynapseExited:
                server.proc = None
                if attempt == 2:
                    raise
        passwords = {}
        for user in users:
            password = secrets.token_hex(12)
            register(base_url, shared_secret, user, password)
            passwords[user] = password
        line = {
            "base_url": base_url,
            "server_name": SERVER_NAME,
            "users": passwords,
            "pid": server.proc.pid,
            "dir": server.workdir,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        # Serve until stdin closes; anything written to it is ignored.
        while sys.stdin.buffer.read(4096):
            pass
    except subprocess.CalledProcessError as exc:
        sys.stderr.write("synapse_server: %s\n%s\n" % (exc, (exc.stderr or b"").decode(errors="replace")))
        return 1
    except Exception as exc:  # noqa: BLE001 - report, then clean up
        sys.stderr.write("synapse_server: %s: %s\n" % (type(exc).__name__, exc))
        return 1
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
