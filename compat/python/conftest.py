"""Fixtures of the Python compatibility suite.

One harness (engram + scripted model on loopback, see engramtest.py) serves
the whole session; it is stopped by closing its stdin when the session ends.

    engram_url  the engram server's base URL (str), for raw HTTP
    harness     the running engramtest.Harness (urls, model)
    model       the scripted model: script(*steps), pending(), requests();
                a test that leaves scripted steps unconsumed errors at teardown
    letta05     Letta 0.5's RESTClient: letta.create_client(base_url=engram_url + "/letta-0.5")
    letta051    Letta 0.5.1's RESTClient (in .venv051, where letta is 0.5.1):
                letta.create_client(base_url=engram_url + "/letta-0.5.1")
    sdk         the modern SDK: letta_client.Letta(base_url=engram_url)
    unique      unique(prefix) -> a name no other test uses

$ENGRAM_COMPAT_HARNESS names a prebuilt harness binary (run.sh sets it);
without it the harness is built with go build. $ENGRAM_COMPAT_VERBOSE=1 logs
the server to stderr.
"""

import os

import pytest

import engramtest


@pytest.fixture(scope="session")
def harness():
    h = engramtest.Harness.start(verbose=bool(os.environ.get("ENGRAM_COMPAT_VERBOSE")))
    yield h
    code = h.stop()
    if code not in (0, None):
        pytest.fail(f"the harness exited with code {code}", pytrace=False)


@pytest.fixture(scope="session")
def engram_url(harness):
    return harness.engram_url


@pytest.fixture
def model(harness):
    """The scripted model. The script is shared by the session, so a test
    that leaves steps unconsumed would feed them to the next test: that is
    reported as an error of the test that left them."""
    yield harness.model
    left = harness.model.pending()
    if left:
        pytest.fail(f"{left} scripted model step(s) were not consumed by this test", pytrace=False)


@pytest.fixture(scope="session")
def letta05(engram_url):
    """Letta 0.5's own client, unchanged apart from its base URL."""
    from letta import create_client  # slow to import; only tests that use it pay

    return create_client(base_url=engram_url + "/letta-0.5", token=engramtest.TOKEN)


@pytest.fixture(scope="session")
def letta051(engram_url):
    """Letta 0.5.1's own client, unchanged apart from its base URL. Only the
    0.5.1 venv (.venv051) has letta 0.5.1; the import is lazy, so the other
    venv never builds this fixture."""
    import letta
    from letta import create_client

    assert letta.__version__ == "0.5.1", f"letta {letta.__version__} is installed; the 0.5.1 tests run in .venv051"
    return create_client(base_url=engram_url + "/letta-0.5.1", token=engramtest.TOKEN)


@pytest.fixture(scope="session")
def sdk(engram_url):
    """The official modern SDK. Retries are off so that an error engram
    answers is seen, not retried away."""
    from letta_client import Letta

    return Letta(base_url=engram_url, api_key=engramtest.TOKEN, max_retries=0, timeout=60)


@pytest.fixture
def unique():
    """unique(prefix) returns a name no other test uses."""
    return engramtest.unique
