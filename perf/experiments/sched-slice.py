"""Sets the EEVDF scheduler's slice request (sched_attr.sched_runtime, Linux
6.12+, SCHED_OTHER: 0.1 to 100 ms; 0 restores the default) of every thread
of the given processes, or of itself and then execs a command (threads it
creates inherit it). A shorter slice does not give a thread more CPU time;
it lets it preempt a running task sooner when it wakes.
usage: sched-slice.py NS PID...   |   sched-slice.py NS exec COMMAND [ARGS...]"""
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
SYS_sched_setattr = 314
def setslice(tid, ns):
    # struct sched_attr: size u32, policy u32, flags u64, nice s32, prio u32, runtime u64, deadline u64, period u64
    attr = struct.pack("IIQiIQQQ", 48, 0, 0, 0, 0, ns, 0, 0)
    buf = ctypes.create_string_buffer(attr)
    r = libc.syscall(SYS_sched_setattr, tid, buf, 0)
    if r != 0: raise OSError(ctypes.get_errno(), "sched_setattr %d" % tid)
if __name__ == "__main__":
    ns = int(sys.argv[1])
    if sys.argv[2] == "exec":
        setslice(0, ns); os.execvp(sys.argv[3], sys.argv[3:])
    for pid in sys.argv[2:]:
        for t in os.listdir("/proc/%s/task" % pid):
            setslice(int(t), ns)
