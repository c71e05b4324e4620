# sweep_dump.py - compare two run logs run by run, keyed by what a run is
# (its image and epsilon), never by row ids that a merge renumbers: status,
# outcome, final prediction, loss and iteration, clean prediction, and the
# loss of every step in order. Exit 0 and print the run count when equal;
# fail naming the first difference. Used by test_sweep.sh, test_slurm.sh.
import sqlite3
import sys


def runs(path):
    c = sqlite3.connect(path)
    out = {}
    for rid, ref, eps, st, succ, pred, fl, fi, cp in c.execute(
            "SELECT id, image_ref, eps, status, success, final_pred, final_loss, "
            "final_iter, clean_pred FROM runs"):
        steps = [r[0] for r in c.execute(
            "SELECT loss FROM steps WHERE run_id = ? ORDER BY id", (rid,))]
        key = (ref, eps)
        assert key not in out, ("twice", key)
        out[key] = (st, succ, pred, fl, fi, cp, tuple(steps))
    return out


if __name__ == '__main__':
    a, b = runs(sys.argv[1]), runs(sys.argv[2])
    diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    assert not diff, "%d of %d runs differ, first %s: %s vs %s" % (
        len(diff), len(a), diff[0], a.get(diff[0]), b.get(diff[0]))
    print(len(a))
