#!/usr/bin/env python3
"""Host scheduling policies for the synthetic benchmark's QEMU threads.

The experiment behind perf/RESULTS.md, "Two pipeline cores in the synthetic
mode": while `cargo xtask bench --synthetic-only` runs, this watches for its
QEMU processes (`-name warpcore-synthetic,...`) and gives their threads a
nice value and, optionally, each pipeline vCPU thread (`CPU n/TCG`, n >= 1)
a host CPU of its own. The 1-core and 2-core guests and both guests of the
side-by-side pair get the same policy; side-by-side, the second guest's
pipeline vCPU takes the other host CPU. Not part of the bench. Run as root,
next to the bench, under the build lock:

  flock /tmp/warpcore-build.lock sh -c '
    perf/experiments/synthetic-vcpu-policies.py --nice -10 --threads all --pin --seconds 400 &
    cargo xtask bench --synthetic-only --synthetic-generators local; kill $!'

--threads pipeline (default) renices only the pipeline vCPU threads; all
renices every thread of the process (vCPU 0 and QEMU's main loop too).
Renicing only the pipelines to -20 starves vCPU 0 (it waited 12-51 % of
the window), which is why `all` exists.
"""
import argparse
import os
import time


def qemu_processes(skip):
    """Pids of the running synthetic QEMUs; `skip` caches pids that are not."""
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit() or int(name) in skip:
            continue
        try:
            with open(f'/proc/{name}/cmdline', 'rb') as file:
                command = file.read()
        except OSError:
            continue
        if b'qemu' in command and b'warpcore-synthetic' in command:
            found.append(int(name))
        elif command:
            skip.add(int(name))
    return sorted(found)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--nice', type=int, default=0)
    parser.add_argument('--threads', choices=['pipeline', 'all'], default='pipeline')
    parser.add_argument('--pin', action='store_true')
    parser.add_argument('--seconds', type=float, default=400)
    options = parser.parse_args()
    slots, handled, skip = {}, set(), set()
    end = time.time() + options.seconds
    while time.time() < end:
        live = qemu_processes(skip)
        for pid in live:
            if pid not in slots:
                used = {slots[other] for other in slots if other in live}
                slots[pid] = 0 if 0 not in used else 1
            try:
                tids = [int(tid) for tid in os.listdir(f'/proc/{pid}/task')]
            except OSError:
                continue
            for tid in tids:
                if tid in handled:
                    continue
                try:
                    with open(f'/proc/{pid}/task/{tid}/comm') as file:
                        comm = file.read().strip()
                except OSError:
                    continue
                vcpu = int(comm[4:].split('/')[0]) if comm.startswith('CPU ') else None
                # Other threads appear before the vCPUs; they are done once seen.
                if vcpu is None and options.threads == 'pipeline':
                    continue
                handled.add(tid)
                try:
                    if options.threads == 'all' or (vcpu or 0) >= 1:
                        os.setpriority(os.PRIO_PROCESS, tid, options.nice)
                    if options.pin and vcpu is not None and vcpu >= 1:
                        os.sched_setaffinity(tid, {(vcpu - 1 + slots[pid]) % 2})
                    print(f'{pid} {comm} ({tid}): nice {options.nice}', flush=True)
                except OSError as error:
                    print(f'{pid} {comm} ({tid}): {error}', flush=True)
        for pid in [pid for pid in slots if pid not in live]:
            del slots[pid]
        time.sleep(0.1)


if __name__ == '__main__':
    main()
