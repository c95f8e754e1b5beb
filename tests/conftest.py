"""Shared fixtures: run a test under every kernel path this CPU supports, restore engine state."""
import pytest

import annfast


def supported_isas():
    from annfast._info import config
    return config()["supported_isas"]


@pytest.fixture(params=supported_isas())
def isa(request):
    """Force each supported instruction-set path in turn."""
    before = annfast.get_isa()
    annfast.set_isa(request.param)
    yield request.param
    annfast.set_isa(before)


@pytest.fixture
def threads():
    """Set the thread count inside a test; restored afterwards."""
    before = annfast.get_num_threads()
    yield annfast.set_num_threads
    annfast.set_num_threads(before)
