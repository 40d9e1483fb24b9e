"""Warm kernels: a notebook's kernel is a fork of its runner child, which has the report libraries imported.

The runner's fork server (statex_bi.runner.pool) imports papermill *and* what report notebooks
import (pandas, duckdb, altair, statex_bi and its charts, IPython and ipykernel) once per run, before
the first notebook arrives. Each notebook's child process is a fork of it, and `prepare()` forks the
child once more, first thing, while it has no threads: that copy waits, with every import done, to
become the kernel. When papermill starts the kernel, `ForkProvisioner` hands the waiting copy the
command line, environment and working directory jupyter_client would have given a new
`python -m ipykernel_launcher` process, and it becomes exactly that kernel (in a session of its own,
talking ZeroMQ through the connection file), minus the interpreter start and the 2-3 s of imports.

papermill and nbclient drive it as any kernel: interrupt on cell timeout, dead-kernel detection and
the kill at the end all go through jupyter_client's LocalProvisioner, whose process is the waiting
copy. A notebook whose kernelspec is not this interpreter's ipykernel (another language, another
Python) gets an ordinary launched kernel, and the waiting copy is let go.

Environment variables are read by the kernel as usual; only code that reads one *at import time*
(none of statex_bi does) would see the runner's environment rather than the notebook's.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from jupyter_client import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from traitlets import default

_LAUNCHER = "ipykernel_launcher"
_PR_SET_PDEATHSIG = 1  # prctl option, linux/prctl.h
_waiting: _Waiting | None = None


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (elsewhere: nothing): a kernel dies with its child."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


class _Forked:
    """The Popen-like handle LocalProvisioner needs, for a process this one forked."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdin = self.stdout = self.stderr = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = 0
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                self.returncode = 0
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(9)

    def terminate(self) -> None:
        self.send_signal(15)


class _Waiting:
    """A fork of this process, in a session of its own, waiting on a pipe for its kernel command line."""

    def __init__(self) -> None:
        read_end, self._write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the copy
            os.close(self._write_end)
            die_with_parent()
            _become_kernel(read_end)
        os.close(read_end)
        self.process = _Forked(pid)

    def launch(self, cmd: list[str], env: dict[str, str] | None, cwd: str | None) -> _Forked:
        message = json.dumps({"argv": cmd[cmd.index(_LAUNCHER) + 1 :], "env": env, "cwd": cwd}).encode()
        with os.fdopen(self._write_end, "wb") as pipe:
            pipe.write(message)
        return self.process

    def discard(self) -> None:
        os.close(self._write_end)  # the copy reads end-of-file and exits
        self.process.wait()


def _become_kernel(read_end: int) -> None:
    """In the waiting copy: read the launch message, then run ipykernel as ipykernel_launcher would."""
    code = 0
    try:
        os.setsid()  # as jupyter_client's launcher does: interrupts and kills reach the kernel's group
        with os.fdopen(read_end, "rb") as pipe:
            message = pipe.read()
        if not message:
            os._exit(0)
        launch: dict[str, Any] = json.loads(message)
        if launch["cwd"]:
            os.chdir(launch["cwd"])
        if launch["env"] is not None:
            os.environ.clear()
            os.environ.update(launch["env"])
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__  # the child's log file (fds 1 and 2)
        sys.argv = [sys.executable, *launch["argv"]]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=launch["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the copy must never return into its parent's code
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def prepare() -> None:
    """Fork the waiting kernel now, while this process has no threads (call first thing in a child)."""
    global _waiting
    _waiting = _Waiting()


def release() -> None:
    """Let go of a waiting kernel that was never used (the notebook asked for another kernel)."""
    global _waiting
    if _waiting is not None:
        _waiting.discard()
        _waiting = None


def _is_this_ipykernel(cmd: list[str]) -> bool:
    return (
        len(cmd) > 2
        and _LAUNCHER in cmd
        and cmd[cmd.index(_LAUNCHER) - 1] == "-m"
        and Path(cmd[0]).resolve() == Path(sys.executable).resolve()
    )


class ForkProvisioner(LocalProvisioner):
    """LocalProvisioner whose kernel process is the waiting copy instead of a new interpreter."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        global _waiting
        if _waiting is None or not _is_this_ipykernel(cmd):
            release()
            return await super().launch_kernel(cmd, **kwargs)
        waiting, _waiting = _waiting, None
        self.process = waiting.launch(cmd, kwargs.get("env"), kwargs.get("cwd"))
        self.pid = self.pgid = self.process.pid
        self.cwd = kwargs.get("cwd") or os.getcwd()
        return self.connection_info


class WarmKernelManager(AsyncKernelManager):
    """The kernel manager papermill uses in runner children (nbclient's `kernel_manager_class`).

    Kernels talk over Unix sockets beside their connection file, not TCP ports: ports are picked by
    binding port 0 and letting go, so kernels started at once in different runner children could pick
    the same one and die before replying ("Kernel died before replying to kernel_info"), and a TCP
    kernel is open to every local user.
    """

    @default("transport")
    def _transport_default(self) -> str:
        return "ipc"

    @default("ip")
    def _ip_default(self) -> str:
        # For ipc the "ip" is the sockets' path prefix; jupyter_client's default is relative to the
        # notebook's working directory and shared by every kernel started there.
        from jupyter_core.paths import jupyter_runtime_dir

        folder = Path(jupyter_runtime_dir())
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return str(folder / f"statex-{uuid.uuid4().hex[:16]}-ipc")

    async def _async_pre_start_kernel(self, **kw: Any) -> Any:
        if self.provisioner is None:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = ForkProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)
