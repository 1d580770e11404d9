#!/usr/bin/env python3
"""A small numpy-memmap data loader: worker processes read random records.

The data set is one .npy file holding a 2-D uint8 array, one fixed-size
record per row. The parent maps it with numpy.load(mmap_mode="r"); worker
processes forked by multiprocessing inherit the mapping (as a PyTorch
DataLoader's workers inherit their Dataset) and each assembles batches of
records at random indices, the access pattern that makes a page fault on a
remote file stall a training step.

    python3 loader.py make DATA.npy [--records N] [--record-size BYTES]
    python3 loader.py read DATA.npy [--workers N] [--batches N]
                      [--batch-size N] [--seed N] [--reopen]

"read" prints one line, "records=N sha256=HEX", a digest of every batch in
order: the same file gives the same line whatever the mount, shim or number
of workers. Timing goes to stderr. Run it on a cofault mount with the shim:

    cofault run -- python3 loader.py read /mnt/data/train.npy --workers 4
"""

import argparse
import hashlib
import multiprocessing
import sys
import time

import numpy as np

# Set in the parent before the workers fork; each worker inherits it.
_data = None
_path = None


def _open(path):
    return np.load(path, mmap_mode="r")


def _worker_init(path, reopen):
    global _data
    # --reopen: every worker maps the file itself instead of inheriting.
    if reopen or _data is None:
        _data = _open(path)


def _batch(job):
    """Read one batch: job = (batch number, seed, batch size)."""
    number, seed, size = job
    rng = np.random.default_rng([seed, number])
    idx = rng.integers(0, _data.shape[0], size=size)
    # Fancy indexing copies the rows out of the mapping: the page faults
    # happen here, in the worker.
    records = np.asarray(_data[idx])
    return number, hashlib.sha256(records.tobytes()).hexdigest()


def cmd_make(args):
    rng = np.random.default_rng(args.seed)
    arr = rng.integers(0, 256, size=(args.records, args.record_size),
                       dtype=np.uint8)
    np.save(args.path, arr)
    print("wrote %s: %d records of %d bytes" % (args.path, args.records,
                                               args.record_size))


def cmd_read(args):
    global _data, _path
    _path = args.path
    _data = _open(args.path)
    jobs = [(n, args.seed, args.batch_size) for n in range(args.batches)]
    t0 = time.monotonic()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.workers, initializer=_worker_init,
                  initargs=(args.path, args.reopen)) as pool:
        results = dict(pool.imap_unordered(_batch, jobs))
    elapsed = time.monotonic() - t0
    digest = hashlib.sha256()
    for n in range(args.batches):
        digest.update(results[n].encode())
    print("records=%d sha256=%s" % (args.batches * args.batch_size,
                                    digest.hexdigest()))
    print("%d batches of %d records of %d bytes, %d workers: %.3f s" %
          (args.batches, args.batch_size, _data.shape[1], args.workers,
           elapsed), file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="write a random data set")
    m.add_argument("path")
    m.add_argument("--records", type=int, default=4096)
    m.add_argument("--record-size", type=int, default=4096)
    m.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("read", help="read random batches in workers")
    r.add_argument("path")
    r.add_argument("--workers", type=int, default=4)
    r.add_argument("--batches", type=int, default=32)
    r.add_argument("--batch-size", type=int, default=64)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--reopen", action="store_true",
                   help="each worker maps the file itself")
    args = p.parse_args()
    if args.cmd == "make":
        cmd_make(args)
    else:
        cmd_read(args)


if __name__ == "__main__":
    main()
