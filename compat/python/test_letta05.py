"""Letta 0.5's own Python client (letta 0.5.5, `from letta import create_client`)
against engram's 0.5 surface, http://HOST:PORT/letta-0.5.

Every method of the 0.5 RESTClient that sends a request is called here with
the client unchanged, and each test asserts what came back and what a second
read shows. The client validates every object it receives with pydantic
models that forbid unknown fields, so a passing call also means the shape is
0.5's exactly. Methods the RESTClient leaves unimplemented on the client side
are listed in test_unimplemented_client_side.
"""

import json
import re

import pytest
import requests

from engramtest import TOKEN, call, say, unique

ID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def is_id(prefix, s):
    return re.fullmatch(prefix + "-" + ID, s) is not None


def tool_source(name):
    return f'''def {name}(city: str, days: int = 1) -> str:
    """Look up the weather forecast.

    Args:
        city (str): The city to look up.
        days (int): How many days ahead.

    Returns:
        str: The forecast.
    """
    return f"sunny in {{city}} for {{days}} day(s)"
'''


def make_function(name):
    """A real Python function whose source the client uploads."""
    ns = {}
    exec(compile(tool_source(name), f"<{name}>", "exec"), ns)
    fn = ns[name]
    # parse_source_code reads the source with inspect; give it a file.
    import inspect
    import linecache

    filename = f"<engram-compat-{name}>"
    linecache.cache[filename] = (len(tool_source(name)), None, tool_source(name).splitlines(True), filename)
    fn.__code__ = fn.__code__.replace(co_filename=filename)
    assert inspect.getsource(fn).startswith(f"def {name}(")
    return fn


@pytest.fixture(scope="module")
def client(letta05):
    """The 0.5 client with the server's first chat and embedding configs as
    its defaults, as a 0.5 user sets them up."""
    llms = letta05.list_llm_configs()
    embs = letta05.list_embedding_configs()
    letta05.set_default_llm_config(llms[0])
    letta05.set_default_embedding_config(embs[0])
    return letta05


@pytest.fixture
def agent(client):
    from letta.schemas.memory import ChatMemory

    a = client.create_agent(name=unique("ada"), memory=ChatMemory(human="First name: Ada", persona="I am Sam."))
    yield a
    if client.agent_exists(a.id):
        client.delete_agent(a.id)


def test_models(client):
    llms = client.list_llm_configs()
    assert [c.model for c in llms] == ["gpt-4o-mini"]
    assert llms[0].model_endpoint_type == "openai" and llms[0].context_window == 128000
    embs = client.list_embedding_configs()
    assert [(e.embedding_model, e.embedding_dim) for e in embs] == [("text-embedding-3-small", 64)]


def test_agent_lifecycle(client):
    from letta.schemas.memory import ChatMemory

    name = unique("agent")
    a = client.create_agent(name=name, memory=ChatMemory(human="First name: Ada", persona="I am Sam."), tags=["compat05"])
    assert is_id("agent", a.id)
    assert a.name == name and a.agent_type == "memgpt_agent" and a.tags == ["compat05"]
    assert a.memory.get_block("human").value == "First name: Ada"
    assert a.memory.get_block("persona").value == "I am Sam."
    for t in ["send_message", "conversation_search", "archival_memory_insert", "archival_memory_search",
              "core_memory_append", "core_memory_replace"]:
        assert t in a.tools
    assert a.llm_config.model == "gpt-4o-mini"
    assert a.system  # the default memgpt system prompt
    assert a.message_ids and len(a.message_ids) >= 1

    got = client.get_agent(a.id)
    assert got.id == a.id and got.name == name and sorted(got.tools) == sorted(a.tools)
    assert client.agent_exists(a.id) is True
    assert client.agent_exists("agent-00000000-0000-4000-8000-000000000000") is False
    assert a.id in [x.id for x in client.list_agents()]
    assert [x.id for x in client.list_agents(tags=["compat05"])] == [a.id]
    assert client.get_agent_id(name) == a.id

    updated = client.update_agent(a.id, description="a test agent", tags=["compat05", "more"], metadata={"k": "v"})
    assert updated.description == "a test agent" and updated.tags == ["compat05", "more"]
    assert updated.metadata_ == {"k": "v"}
    assert client.get_agent(a.id).description == "a test agent"

    new_name = unique("renamed")
    client.rename_agent(a.id, new_name)
    assert client.get_agent(a.id).name == new_name

    client.delete_agent(a.id)
    assert client.agent_exists(a.id) is False
    assert a.id not in [x.id for x in client.list_agents()]


def test_update_agent_memory_and_system(client, agent):
    mem = agent.memory
    mem.update_block_value("human", "First name: Ada. Lives in Paris.")
    updated = client.update_agent(agent.id, memory=mem, system="You are a terse assistant.")
    assert updated.memory.get_block("human").value == "First name: Ada. Lives in Paris."
    assert updated.system == "You are a terse assistant."
    assert client.get_in_context_memory(agent.id).get_block("human").value == "First name: Ada. Lives in Paris."


def test_core_memory(client, agent):
    mem = client.get_in_context_memory(agent.id)
    assert mem.get_block("human").value == "First name: Ada"
    assert mem.get_block("human").limit == 2000
    mem = client.update_in_context_memory(agent.id, "human", "First name: Ada. Likes tea.")
    assert mem.get_block("human").value == "First name: Ada. Likes tea."
    assert client.get_core_memory(agent.id).get_block("human").value == "First name: Ada. Likes tea."
    # The compiled prompt renders like 0.5's template.
    assert '<human characters="27/2000">' in mem.compile()


def test_archival_memory(client, agent):
    assert client.get_archival_memory_summary(agent.id).size == 0
    inserted = client.insert_archival_memory(agent.id, "The pump needs oil every six months.")
    assert len(inserted) == 1 and is_id("passage", inserted[0].id)
    assert inserted[0].text == "The pump needs oil every six months." and inserted[0].agent_id == agent.id
    client.insert_archival_memory(agent.id, "Ada's cat is called Turing.")
    assert client.get_archival_memory_summary(agent.id).size == 2
    texts = [p.text for p in client.get_archival_memory(agent.id)]
    assert texts == ["The pump needs oil every six months.", "Ada's cat is called Turing."]
    page = client.get_archival_memory(agent.id, limit=1)
    assert [p.id for p in page] == [inserted[0].id]
    after = client.get_archival_memory(agent.id, after=inserted[0].id)
    assert [p.text for p in after] == ["Ada's cat is called Turing."]
    client.delete_archival_memory(agent.id, inserted[0].id)
    assert [p.text for p in client.get_archival_memory(agent.id)] == ["Ada's cat is called Turing."]
    assert client.get_archival_memory_summary(agent.id).size == 1


def test_send_message(client, agent, model):
    from letta.schemas.letta_message import FunctionCallMessage, FunctionReturn, InternalMonologue

    before = client.get_recall_memory_summary(agent.id).size
    model.script(say("Hello Ada!", thought="The user greeted me."))
    resp = client.send_message(agent_id=agent.id, message="Hi, I am Ada.", role="user")
    kinds = [type(m) for m in resp.messages]
    assert kinds == [InternalMonologue, FunctionCallMessage, FunctionReturn]
    thought, fcall, ret = resp.messages
    assert thought.internal_monologue == "The user greeted me."
    assert fcall.function_call.name == "send_message"
    assert json.loads(fcall.function_call.arguments) == {"message": "Hello Ada!"}
    assert ret.status == "success" and ret.function_call_id == fcall.function_call.function_call_id != ""
    assert resp.usage.step_count == 1 and resp.usage.total_tokens > 0
    # The input and the two messages of the step are in recall memory.
    assert client.get_recall_memory_summary(agent.id).size == before + 3


def test_user_message_and_full_messages(client, agent, model):
    from letta.schemas.message import Message

    model.script(say("Noted."))
    resp = client.user_message(agent_id=agent.id, message="Remember my name.")
    assert json.loads(resp.messages[1].function_call.arguments) == {"message": "Noted."}

    model.script(say("Full objects."))
    resp = client.send_message(agent_id=agent.id, message="Again.", role="user", include_full_message=True)
    assert all(isinstance(m, Message) for m in resp.messages)
    assert [m.role for m in resp.messages] == ["assistant", "tool"]
    assert resp.messages[0].tool_calls[0].function.name == "send_message"
    assert resp.messages[1].tool_call_id == resp.messages[0].tool_calls[0].id


def test_system_message_and_assistant_name(client, agent, model):
    model.script(say("Understood."))
    resp = client.send_message(agent_id=agent.id, message="[system note] be brief", role="system")
    assert json.loads(resp.messages[1].function_call.arguments) == {"message": "Understood."}


def test_stream_steps(client, agent, model):
    from letta.schemas.enums import MessageStreamStatus
    from letta.schemas.letta_message import FunctionCallMessage, FunctionReturn, InternalMonologue
    from letta.schemas.usage import LettaUsageStatistics

    model.script(say("Streaming hello."))
    chunks = list(client.send_message(agent_id=agent.id, message="stream please", role="user", stream_steps=True))
    kinds = [type(c) for c in chunks]
    assert kinds == [MessageStreamStatus, InternalMonologue, FunctionCallMessage, FunctionReturn,
                     MessageStreamStatus, LettaUsageStatistics, MessageStreamStatus]
    assert chunks[0] == MessageStreamStatus.done_generation and chunks[4] == MessageStreamStatus.done_step
    assert json.loads(chunks[2].function_call.arguments) == {"message": "Streaming hello."}
    assert chunks[2].function_call.function_call_id == chunks[3].function_call_id != ""
    assert chunks[5].step_count == 1 and chunks[6] == MessageStreamStatus.done


def test_stream_tokens(client, agent, model):
    from letta.schemas.enums import MessageStreamStatus
    from letta.schemas.letta_message import FunctionCallMessage, InternalMonologue

    model.script(say("Token hello.", thought="Thinking in tokens now."))
    chunks = list(client.send_message(agent_id=agent.id, message="tokens please", role="user", stream_tokens=True))
    thoughts = [c for c in chunks if isinstance(c, InternalMonologue)]
    assert thoughts and "".join(t.internal_monologue for t in thoughts) == "Thinking in tokens now."
    assert len({t.id for t in thoughts}) == 1
    calls = [c for c in chunks if isinstance(c, FunctionCallMessage)]
    assert json.loads(calls[0].function_call.arguments) == {"message": "Token hello."}
    assert chunks[-1] == MessageStreamStatus.done


def test_messages_and_update_message(client, agent, model):
    model.script(say("I will remember."))
    client.send_message(agent_id=agent.id, message="My cat is Turing.", role="user")

    history = client.get_messages(agent.id)
    assert all(is_id("message", m.id) for m in history)
    users = [m for m in history if m.role == "user" and "My cat is Turing." in (m.text or "")]
    assert len(users) == 1
    assistants = [m for m in history if m.role == "assistant" and m.tool_calls]
    assert json.loads(assistants[0].tool_calls[0].function.arguments) == {"message": "I will remember."}
    assert len(client.get_messages(agent.id, limit=2)) == 2

    in_context = client.get_in_context_messages(agent.id)
    assert in_context[0].role == "system"
    target = [m for m in in_context if m.role == "assistant" and m.tool_calls][-1]
    updated = client.update_message(agent.id, target.id, text="I thought again.")
    assert updated.id == target.id and updated.text == "I thought again."
    again = {m.id: m for m in client.get_in_context_messages(agent.id)}
    assert again[target.id].text == "I thought again."
    assert again[target.id].tool_calls[0].function.name == "send_message"


def test_humans_and_personas(client):
    hname, pname = unique("human"), unique("persona")
    h = client.create_human(name=hname, text="First name: Grace")
    assert is_id("block", h.id) and h.label == "human" and h.template_name == hname and h.is_template
    assert client.get_human_id(hname) == h.id
    assert client.get_human(h.id).value == "First name: Grace"
    assert hname in [x.template_name for x in client.list_humans()]
    assert client.update_human(h.id, text="First name: Grace Hopper").value == "First name: Grace Hopper"
    assert client.get_human(h.id).value == "First name: Grace Hopper"
    # The client sends every field, is_template=False included; the block
    # stays a template with its label.
    again = client.get_human(h.id)
    assert again.is_template and again.label == "human" and again.template_name == hname
    assert h.id in [x.id for x in client.list_humans()]
    deleted = client.delete_human(h.id)
    assert deleted.id == h.id
    assert client.get_human(h.id) is None

    p = client.create_persona(name=pname, text="I am a pirate.")
    assert p.label == "persona" and client.get_persona_id(pname) == p.id
    assert client.get_persona(p.id).value == "I am a pirate."
    assert pname in [x.template_name for x in client.list_personas()]
    assert client.update_persona(p.id, text="I am a polite pirate.").value == "I am a polite pirate."
    assert client.delete_persona(p.id).id == p.id
    assert client.get_persona(p.id) is None


def test_blocks(client):
    name = unique("note")
    b = client.create_block(label="note", value="buy milk", template_name=name, is_template=True)
    assert b.label == "note" and b.value == "buy milk" and b.template_name == name
    assert client.get_block(b.id).value == "buy milk"
    assert client.get_block_id(name=name, label="note") == b.id
    assert b.id in [x.id for x in client.list_blocks(label="note")]
    assert client.update_block(b.id, text="buy oat milk").value == "buy oat milk"
    # 0.5.5's update_block cannot send a limit alone (its own validator
    # reads the absent value); with a value it can.
    assert client.update_block(b.id, text="buy oat milk", limit=500).limit == 500
    assert client.get_block(b.id).value == "buy oat milk"
    assert client.delete_block(b.id).value == "buy oat milk"
    assert client.get_block(b.id) is None
    assert b.id not in [x.id for x in client.list_blocks(label="note")]


def test_tools(client, agent, model):
    name = "forecast_" + unique("t").split("-")[1]
    t = client.create_tool(make_function(name), tags=["weather"])
    assert is_id("tool", t.id) and t.name == name and t.tags == ["weather"]
    assert t.json_schema["name"] == name and "city" in t.json_schema["parameters"]["properties"]
    assert f"def {name}(" in t.source_code
    assert client.get_tool(t.id).name == name
    assert client.get_tool_id(name) == t.id
    assert client.get_tool_id("no_such_tool_anywhere") is None
    assert name in [x.name for x in client.list_tools(limit=1000)]
    assert client.update_tool(t.id, tags=["weather", "demo"]).tags == ["weather", "demo"]
    assert client.update_tool(t.id, description="Weather, briefly.").description == "Weather, briefly."

    assert name in client.add_tool_to_agent(agent.id, t.id).tools
    assert name in [x.name for x in client.get_tools_from_agent(agent.id)]
    # The agent calls it; the sandbox runs it.
    model.script({"Content": "Let me check.", "ToolCalls": [call(name, {"city": "Paris", "days": 2, "request_heartbeat": True})]},
                 say("Sunny in Paris."))
    resp = client.send_message(agent_id=agent.id, message="Weather in Paris?", role="user")
    returns = [m for m in resp.messages if m.message_type == "function_return"]
    assert "sunny in Paris for 2 day(s)" in returns[0].function_return and returns[0].status == "success"

    assert name not in client.remove_tool_from_agent(agent.id, t.id).tools
    client.delete_tool(t.id)
    assert client.get_tool(t.id) is None

    base = [x.name for x in client.add_base_tools()]
    for n in ["send_message", "conversation_search", "archival_memory_search", "core_memory_append"]:
        assert n in base


def test_sources_files_and_jobs(client, agent, tmp_path):
    from letta.schemas.enums import JobStatus

    name = unique("docs")
    src = client.create_source(name)
    assert is_id("source", src.id) and src.name == name and src.embedding_config.embedding_dim == 64
    assert client.get_source(src.id).name == name
    assert client.get_source_id(name) == src.id
    assert src.id in [s.id for s in client.list_sources()]
    renamed = unique("manuals")
    assert client.update_source(src.id, name=renamed).name == renamed

    f = tmp_path / "pump.txt"
    f.write_text("The pump needs oil every six months. Use grade 30 oil.\n" * 20)
    job = client.load_file_to_source(str(f), src.id, blocking=True)
    assert job.status == JobStatus.completed and is_id("job", job.id)
    assert client.get_job(job.id).status == JobStatus.completed
    assert job.id in [j.id for j in client.list_jobs()]
    assert job.id not in [j.id for j in client.list_active_jobs()]

    files = client.list_files_from_source(src.id)
    assert [x.file_name for x in files] == ["pump.txt"] and files[0].source_id == src.id

    before = client.get_archival_memory_summary(agent.id).size
    client.attach_source_to_agent(source_id=src.id, agent_id=agent.id)
    assert [s.id for s in client.list_attached_sources(agent.id)] == [src.id]
    assert client.get_archival_memory_summary(agent.id).size > before
    detached = client.detach_source(source_id=src.id, agent_id=agent.id)
    assert detached.id == src.id
    assert client.list_attached_sources(agent.id) == []
    assert client.get_archival_memory_summary(agent.id).size == before

    client.delete_file_from_source(src.id, files[0].id)
    assert client.list_files_from_source(src.id) == []
    assert client.delete_job(job.id).id == job.id
    assert job.id not in [j.id for j in client.list_jobs()]
    with pytest.raises(ValueError):
        client.get_job(job.id)

    client.delete_source(src.id)
    assert src.id not in [s.id for s in client.list_sources()]


def test_organizations(client):
    orgs = client.list_orgs()
    assert len(orgs) == 1 and orgs[0].id.startswith("org-")
    with pytest.raises(ValueError, match="one organization"):
        client.create_org("another")


def test_one_store_two_surfaces(client, engram_url):
    """An agent made through the modern API is the same agent through 0.5."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    r = requests.post(f"{engram_url}/v1/agents/", headers=headers, json={
        "name": unique("modern"), "model": "openai/gpt-4o-mini", "embedding": "openai/text-embedding-3-small",
        "memory_blocks": [{"label": "human", "value": "First name: Linus"}, {"label": "persona", "value": "I am Sam."}],
    })
    r.raise_for_status()
    modern = r.json()
    a = client.get_agent(modern["id"])
    assert a.name == modern["name"] and a.memory.get_block("human").value == "First name: Linus"
    client.update_in_context_memory(a.id, "human", "First name: Linus. Writes kernels.")
    r = requests.get(f"{engram_url}/v1/agents/{a.id}/core-memory/blocks/human", headers=headers)
    assert r.json()["value"] == "First name: Linus. Writes kernels."
    client.delete_agent(a.id)


def test_bad_input_gets_4xx_and_changes_nothing(client, engram_url):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = f"{engram_url}/letta-0.5/v1"
    n = len(client.list_agents())
    cases = [
        ("POST", "/agents", {"name": "bad name!", "tools": []}, 422),
        ("POST", "/agents", {"nonsense": 1}, 422),
        ("POST", "/agents", "not json", 400),
        ("GET", "/agents/agent-00000000-0000-4000-8000-000000000000", None, 404),
        ("GET", "/agents/not-an-id", None, None),
        ("POST", "/blocks", {"value": "x"}, 422),
        ("POST", "/agents/agent-00000000-0000-4000-8000-000000000000/messages",
         {"messages": [{"role": "user", "text": "hi"}]}, 404),
        ("POST", "/agents/agent-00000000-0000-4000-8000-000000000000/messages",
         {"messages": [{"role": "assistant", "text": "hi"}]}, 422),
    ]
    for method, path, body, want in cases:
        if isinstance(body, str):
            r = requests.request(method, base + path, headers={**headers, "Content-Type": "application/json"}, data=body)
        else:
            r = requests.request(method, base + path, headers=headers, json=body)
        assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text)
        if want:
            assert r.status_code == want, (method, path, r.status_code, r.text)
        assert isinstance(r.json()["detail"], str) and r.json()["detail"], r.text
    assert len(client.list_agents()) == n
    r = requests.get(base + "/agents", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and "detail" in r.json()


def test_unimplemented_client_side(client, agent):
    """Methods letta 0.5.5's RESTClient does not implement: they raise before
    sending anything, whatever the server."""
    with pytest.raises(NotImplementedError):
        client.save()
    with pytest.raises(NotImplementedError):
        client.load_data(None, "x")
