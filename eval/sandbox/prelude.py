# The sandbox's prelude: python3 -I -B -c <this> <config> <program>.
#
# It reads the program, confines its own process (resource limits as hard limits; on Linux,
# Landlock and a seccomp filter, all irreversible and inherited by any thread or process),
# reports what it applied on file descriptor 3 (one line of JSON), disables nanochat's list
# of destructive functions, and runs the program as nanochat's execute_code does: exec in
# fresh globals, success when it returns, failure on any exception (SystemExit included).
import ctypes
import json
import os
import sys
import traceback


def set_limits(limits):
    """Each limit, by its name in resource, as both soft and hard limit; the notes of
    those not set."""
    import resource

    notes = []
    for name, value in sorted(limits.items()):
        which = getattr(resource, name, None)
        if which is None:
            notes.append(name + " does not exist here")
            continue
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError) as e:
            notes.append("%s: %s" % (name, e))
    return notes


def libc():
    return ctypes.CDLL(None, use_errno=True)


def errno_text(what):
    return "%s: %s" % (what, os.strerror(ctypes.get_errno()))


PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def no_new_privs(c):
    if c.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        return errno_text("prctl(PR_SET_NO_NEW_PRIVS)")
    return ""


# Landlock's system calls (the same numbers on every Linux architecture) and rights.
LANDLOCK_CREATE_RULESET, LANDLOCK_ADD_RULE, LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REFER, FS_TRUNCATE = 1 << 13, 1 << 14
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1


class RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64)]


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock():
    """Confines every change to the file system to the working directory (and writes to
    /dev/null), and with ABI 4 forbids TCP bind and connect. Returns "" or why not."""
    c = libc()
    c.syscall.restype = ctypes.c_long
    abi = c.syscall(ctypes.c_long(LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                    ctypes.c_long(LANDLOCK_CREATE_RULESET_VERSION))
    if abi < 0:
        return errno_text("Landlock unavailable")
    # ABI 1's thirteen rights but execute, read file and read directory: every write,
    # removal and creation of a file, directory, link, socket, pipe or device.
    fs = ((1 << 13) - 1) & ~(FS_EXECUTE | FS_READ_FILE | FS_READ_DIR)
    if abi >= 2:
        fs |= FS_REFER
    if abi >= 3:
        fs |= FS_TRUNCATE
    net, size = 0, 8
    if abi >= 4:
        net, size = NET_BIND_TCP | NET_CONNECT_TCP, 16
    attr = RulesetAttr(fs, net)
    ruleset = c.syscall(ctypes.c_long(LANDLOCK_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size),
                        ctypes.c_long(0))
    if ruleset < 0:
        return errno_text("landlock_create_ruleset")
    try:
        for path, rights in ((".", fs), ("/dev/null", fs & (FS_WRITE_FILE | FS_TRUNCATE))):
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = PathBeneathAttr(rights, fd)
                if c.syscall(ctypes.c_long(LANDLOCK_ADD_RULE), ctypes.c_long(ruleset),
                             ctypes.c_long(LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_long(0)) != 0:
                    return errno_text("landlock_add_rule " + path)
            finally:
                os.close(fd)
        why = no_new_privs(c)
        if why:
            return why
        if c.syscall(ctypes.c_long(LANDLOCK_RESTRICT_SELF), ctypes.c_long(ruleset), ctypes.c_long(0)) != 0:
            return errno_text("landlock_restrict_self")
    finally:
        os.close(ruleset)
    return ""


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp(program):
    """Installs the classic BPF program (8 bytes an instruction). Returns "" or why not."""
    c = libc()
    why = no_new_privs(c)
    if why:
        return why
    buf = ctypes.create_string_buffer(program, len(program))
    prog = SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if c.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog), ctypes.c_ulong(0),
               ctypes.c_ulong(0)) != 0:
        return errno_text("prctl(PR_SET_SECCOMP)")
    return ""


def attempt(layer, *args):
    try:
        return layer(*args)
    except Exception as e:
        return "%s: %s: %s" % (layer.__name__, type(e).__name__, e)


def reliability_guard():
    """nanochat's reliability_guard, less its memory limits (set above): the destructive
    functions of os, shutil and subprocess set to None, and os._exit too, so that a program
    cannot end itself with success. Not containment: posix.fork and ctypes, for two, are
    still there."""
    import builtins
    import faulthandler
    import shutil
    import subprocess

    faulthandler.disable()
    builtins.exit = None
    builtins.quit = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork",
                 "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown",
                 "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir", "_exit"):
        setattr(os, name, None)
    shutil.rmtree = None
    shutil.move = None
    shutil.chown = None
    subprocess.Popen = None
    builtins.help = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


def main():
    config = json.loads(sys.argv[1])
    with open(sys.argv[2], "rb") as f:
        source = f.read()
    # The limits first: the seccomp filter forbids setting them.
    report = {"limits": set_limits(config["limits"]), "landlock": "not tried", "seccomp": "not tried"}
    if config["landlock"]:
        report["landlock"] = attempt(landlock)
    if config["seccomp"]:
        report["seccomp"] = attempt(seccomp, bytes.fromhex(config["seccomp"]))
    os.write(3, json.dumps(report).encode() + b"\n")
    os.close(3)

    exit_now = os._exit
    reliability_guard()
    try:
        exec(compile(source, "program.py", "exec"), {})
    except BaseException:
        kind, value, tb = sys.exc_info()
        traceback.print_exception(kind, value, tb.tb_next)  # from the program's frame on
        status = 1
    else:
        status = 0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    exit_now(status)


main()
