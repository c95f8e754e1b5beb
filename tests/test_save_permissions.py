"""save() gives a new file the mode open() would (0666 minus the umask) and keeps the mode of a
file it replaces (issue 20, item 13; mkstemp + rename used to make every model file 0600)."""
import os
import stat

import numpy as np
import pytest

import annfast


@pytest.fixture
def umask():
    """Set the process umask for one test (restored after)."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def model():
    m = annfast.Sequential([annfast.Dense(2)], input_dim=3, seed=0)
    m.compile("mse", "adam")
    return m


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664),
                                           (0o027, 0o640), (0, 0o666)])
def test_new_file_honours_umask(tmp_path, umask, mask, expected):
    umask(mask)
    path = tmp_path / "m.npz"
    model().save(path)
    assert mode(path) == expected
    annfast.save_model(model(), tmp_path / "n.npz")
    assert mode(tmp_path / "n.npz") == expected


@pytest.mark.parametrize("existing,mask", [(0o644, 0o077), (0o600, 0o022), (0o640, 0o002),
                                           (0o444, 0o022), (0o664, 0o022)])
def test_replacing_keeps_the_existing_mode(tmp_path, umask, existing, mask):
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    os.chmod(path, existing)
    umask(mask)
    m = model()
    m.save(path)
    assert mode(path) == existing
    np.testing.assert_array_equal(annfast.load_model(path).get_weights()[0], m.get_weights()[0])
    assert [p for p in os.listdir(tmp_path) if p.startswith(".annfast-save")] == []


def test_checkpoints_honour_umask(tmp_path, umask):
    umask(0o022)
    m = model()
    ckpt = annfast.callbacks.ModelCheckpoint(str(tmp_path / "c{epoch}.npz"), save_best_only=False)
    m.fit(np.ones((8, 3)), np.ones((8, 2)), epochs=2, callbacks=[ckpt], verbose=0)
    assert [mode(p) for p in ckpt.saved] == [0o644, 0o644]
