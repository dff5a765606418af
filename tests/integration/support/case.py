"""unittest base classes: clients opened through a test case are closed at tear-down, where
the protocol invariants they recorded are asserted; servers per test or per class."""

import asyncio
import sys
import unittest

from .client import Client, join
from .server import Server

def run_async(coro):
    return asyncio.run(coro)


class AsyncTestCase(unittest.IsolatedAsyncioTestCase):
    """Base class: `await self.connect(server)` gives a Client that is closed at tear-down,
    where the protocol invariants every client recorded are asserted."""

    async def asyncSetUp(self):
        self._clients = []
        # IsolatedAsyncioTestCase runs the loop in debug mode; silence slow-callback noise
        asyncio.get_running_loop().slow_callback_duration = 10.0

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result is not None else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            srv = getattr(self, "server", None)
            if isinstance(srv, Server):
                sys.stderr.write("\n----- refine-server stderr (%s), tail -----\n%s\n----- end -----\n"
                                 % (srv.stderr_path, srv.stderr_text()[-8000:]))
        return out

    async def connect(self, server, label=None, origin=None):
        c = await Client.connect(server.ws_url, label=label, origin=origin)
        self._clients.append(c)
        return c

    async def joined(self, server, room, token, name, label=None, **kw):
        c = await self.connect(server, label=label or name)
        await join(c, room, token, name, **kw)
        return c

    async def asyncTearDown(self):
        problems = []
        for c in self._clients:
            await c.close()
            for v in c.violations:
                problems.append("%s: %s" % (c.label, v))
        self._clients = []
        if problems:
            self.fail("protocol invariant violations:\n  " + "\n  ".join(problems[:40]))

    def assertNoViolations(self, *clients):
        problems = ["%s: %s" % (c.label, v) for c in clients for v in c.violations]
        if problems:
            self.fail("protocol invariant violations:\n  " + "\n  ".join(problems[:40]))


class ServerPerTestCase(AsyncTestCase):
    """A test class whose every test gets a fresh server (started with `server_args`) as
    self.server, stopped after it (SIGTERM, exit status 0 required)."""
    server_args = ()

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.server = Server(*self.server_args)
        self.server.start()

    async def asyncTearDown(self):
        try:
            await super().asyncTearDown()
        finally:
            code = await self.server.astop()
            self.server._finish(None)
            self.assertEqual(code, 0, "server exit code on SIGTERM")


class SharedServerTestCase(AsyncTestCase):
    """A test class whose tests share one server, started before the first and stopped
    (SIGTERM, exit status 0 required) after the last."""
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        srv = cls.server
        code = srv.stop()
        srv._finish(None)
        if code != 0:
            raise AssertionError("server exit code on SIGTERM: %s (expected 0)" % code)


def main():
    unittest.main(verbosity=2)
