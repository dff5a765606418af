"""A cluster under test: Debian's haproxy running the repository's deploy/haproxy.cfg (its
addresses substituted through the environment, as the file documents) in front of refine-server
instances named a, b, c, each on a free port with its own database (support/server.py's Server,
so each one's stderr is kept and checked for sanitizer reports). The runtime API socket is
reachable with `runtime()`; `wait_server()` waits for HAProxy's view of a server's health."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

from .server import ROOT, Server, ServerError, free_port

HAPROXY_CFG = os.path.join(ROOT, "deploy", "haproxy.cfg")


def haproxy_binary():
    """The haproxy executable, or None (the setup scripts install Debian's package)."""
    return shutil.which("haproxy") or (os.path.exists("/usr/sbin/haproxy") and "/usr/sbin/haproxy") \
        or None


class Balancer:
    """haproxy -f deploy/haproxy.cfg with REFINE_LB_BIND, REFINE_<X>_ADDR and REFINE_LB_SOCKET
    set; foreground (-db), stopped with SIGTERM (SIGUSR1 would wait for the tunnels)."""

    def __init__(self, addrs, tmpdir, port=None, cfg=HAPROXY_CFG):
        self.binary = haproxy_binary()
        self.cfg = cfg
        self.port = port or free_port()
        self.socket_path = os.path.join(tmpdir, "haproxy.sock")
        self.log_path = os.path.join(tmpdir, "haproxy.log")
        self.env = dict(os.environ)
        self.env.update({"REFINE_LB_BIND": "127.0.0.1:%d" % self.port,
                         "REFINE_LB_SOCKET": self.socket_path})
        for name, addr in addrs.items():
            self.env["REFINE_%s_ADDR" % name.upper()] = addr
        self.proc = None
        self._log = None

    def check(self):
        """`haproxy -c`: returns (exit code, output)."""
        p = subprocess.run([self.binary, "-c", "-f", self.cfg], env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def start(self, timeout=10.0):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "-db", "-f", self.cfg], env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise ServerError("haproxy exited with %s at start-up:\n%s"
                                  % (self.proc.returncode, self.log_text()))
            if os.path.exists(self.socket_path):
                try:
                    self.runtime("show info")
                    return self
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise ServerError("haproxy did not start within %.0f s:\n%s"
                                  % (timeout, self.log_text()))
            time.sleep(0.05)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def runtime(self, command, timeout=5.0):
        """One command on the runtime API socket; returns its answer."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.socket_path)
            s.sendall(command.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
            return out.decode("utf-8", "replace")
        finally:
            s.close()

    def server_status(self, backend, server):
        """HAProxy's status of backend/server from `show stat` ("UP", "DOWN", "DRAIN", ...)."""
        lines = self.runtime("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == backend and row.get("svname") == server:
                return row.get("status", "")
        raise AssertionError("no server %s/%s in haproxy's stats" % (backend, server))

    def wait_server(self, backend, server, status_prefix, timeout=15.0):
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            status = self.server_status(backend, server)
            if status.startswith(status_prefix):
                return status
            time.sleep(0.1)
        raise AssertionError("haproxy: %s/%s is %r, not %s after %.0f s"
                             % (backend, server, status, status_prefix, timeout))


class Cluster:
    """Instances `names` (each a Server started with --instance NAME) behind a Balancer.
    `extra_args` go to every instance. Use as a context manager."""

    def __init__(self, names=("a", "b", "c"), extra_args=()):
        self.tmpdir = tempfile.mkdtemp(prefix="refine-cluster-")
        self.names = tuple(names)
        self.servers = {}
        for n in self.names:
            d = os.path.join(self.tmpdir, n)
            os.mkdir(d)
            # Every connection reaches an instance from HAProxy's address: the per-address
            # limit (64 by default) would count all the clients as one.
            self.servers[n] = Server("--instance", n, "--max-conns-per-ip", "100000",
                                     *extra_args, tmpdir=d)
        addrs = {n: "127.0.0.1:%d" % s.port for n, s in self.servers.items()}
        self.lb = Balancer(addrs, self.tmpdir)

    # -- addresses -----------------------------------------------------------
    @property
    def port(self):
        return self.lb.port

    @property
    def http_base(self):
        return "http://127.0.0.1:%d" % self.lb.port

    def ws_url(self, room=None):
        """The balancer's WebSocket URL: /r/<room>/ws for a room, /ws to create one."""
        if room is None:
            return "ws://127.0.0.1:%d/ws" % self.lb.port
        return "ws://127.0.0.1:%d/r/%s/ws" % (self.lb.port, room)

    # -- lifecycle -----------------------------------------------------------
    def start(self):
        for s in self.servers.values():
            s.start()
        self.lb.start()
        for n in self.names:
            self.lb.wait_server("home_%s" % n, n, "UP")
            self.lb.wait_server("any", n, "UP")
        return self

    def stop(self, failed=False):
        problems = []
        self.lb.stop()
        for s in self.servers.values():
            try:
                s._finish(Exception("cluster test failed") if failed else None)
            except ServerError as e:
                problems.append(str(e))
        if failed:
            import sys
            sys.stderr.write("\n----- haproxy log (%s) -----\n%s\n----- end -----\n"
                             % (self.lb.log_path, self.lb.log_text()[-8000:]))
        if not failed and not problems and not os.environ.get("REFINE_KEEP"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if problems:
            raise ServerError("\n".join(problems))

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop(failed=True)
            raise

    def __exit__(self, et, ev, tb):
        self.stop(failed=ev is not None)
        return False

