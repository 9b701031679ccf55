"""The official modern Python SDK (letta-client) against engram."""

import engramtest


def test_health(sdk):
    assert sdk.health().status == "ok"


def test_agent_create(sdk, unique):
    name = unique("smoke")
    a = sdk.agents.create(name=name, model=engramtest.CHAT_HANDLE, embedding=engramtest.EMBEDDING_HANDLE)
    assert sdk.agents.retrieve(a.id).name == name
