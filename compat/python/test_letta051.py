"""Letta 0.5.1's own Python client (letta 0.5.1, `from letta import create_client`)
against engram's 0.5.1 surface, http://HOST:PORT/letta-0.5.1.

It runs in a venv of its own (.venv051, from requirements051.lock): letta 0.5.1
and 0.5.5 cannot be installed side by side. Every method of the 0.5.1
RESTClient that sends a request is called here with the client unchanged, and
each test asserts what came back and what a second read shows. 0.5.1's
pydantic models forbid unknown fields, so a passing call also means the shape
is 0.5.1's exactly (its Block has name/template/user_id, its Tool, Source,
Job and FileMetadata carry user_id, its AgentState has no tags). 0.5.1 asks
send_message for Message objects and converts them client-side, and its SSE
reader knows no usage chunk. Methods the 0.5.1 RESTClient does not implement,
or cannot send, are listed in test_unimplemented_client_side.
"""

import inspect
import json
import linecache
import re

import pytest
import requests

from engramtest import TOKEN, call, say, unique

ID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
MISSING_AGENT = "agent-00000000-0000-4000-8000-000000000000"


def is_id(prefix, s):
    return re.fullmatch(prefix + "-" + ID, s) is not None


def tool_source(name, word="sunny"):
    return f'''def {name}(city: str, days: int = 1) -> str:
    """Look up the weather forecast.

    Args:
        city (str): The city to look up.
        days (int): How many days ahead.

    Returns:
        str: The forecast.
    """
    return f"{word} in {{city}} for {{days}} day(s)"
'''


def make_function(name, word="sunny"):
    """A real Python function whose source the client uploads (0.5.1 reads
    it with inspect.getsource, so it gets a file in linecache)."""
    src = tool_source(name, word)
    filename = f"<engram-compat-{name}-{word}>"
    ns = {}
    exec(compile(src, filename, "exec"), ns)
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    fn = ns[name]
    assert inspect.getsource(fn).startswith(f"def {name}(")
    return fn


@pytest.fixture(scope="module")
def client(letta051):
    """The 0.5.1 client with the server's first chat and embedding models as
    its defaults, as a 0.5.1 user sets them up."""
    letta051.set_default_llm_config(letta051.list_models()[0])
    letta051.set_default_embedding_config(letta051.list_embedding_models()[0])
    return letta051


@pytest.fixture
def agent(client):
    from letta.schemas.memory import ChatMemory

    a = client.create_agent(name=unique("ada"), memory=ChatMemory(human="First name: Ada", persona="I am Sam."))
    yield a
    if client.agent_exists(a.id):
        client.delete_agent(a.id)


def test_models(client):
    llms = client.list_models()
    assert [c.model for c in llms] == ["gpt-4o-mini"]
    assert llms[0].model_endpoint_type == "openai" and llms[0].context_window == 128000
    embs = client.list_embedding_models()
    assert [(e.embedding_model, e.embedding_dim) for e in embs] == [("text-embedding-3-small", 64)]
    # 0.5.1 has the config-named twins too; same routes, same answers.
    assert client.list_llm_configs() == llms
    assert client.list_embedding_configs() == embs


def test_agent_lifecycle(client):
    from letta.schemas.memory import ChatMemory

    name = unique("agent")
    a = client.create_agent(name=name, memory=ChatMemory(human="First name: Ada", persona="I am Sam."),
                            metadata={"k": "v"}, description="made by 0.5.1")
    assert is_id("agent", a.id)
    assert a.name == name and a.agent_type == "memgpt_agent" and a.description == "made by 0.5.1"
    assert a.metadata_ == {"k": "v"}
    assert a.memory.get_block("human").value == "First name: Ada"
    assert a.memory.get_block("persona").value == "I am Sam."
    # 0.5.1 uploads the memory's edit functions itself, then names them.
    for t in ["send_message", "conversation_search", "archival_memory_insert", "archival_memory_search",
              "core_memory_append", "core_memory_replace"]:
        assert t in a.tools
    assert a.llm_config.model == "gpt-4o-mini" and a.embedding_config.embedding_dim == 64
    assert a.system  # the default memgpt system prompt
    assert a.message_ids and all(is_id("message", m) for m in a.message_ids)

    got = client.get_agent(a.id)
    assert got.id == a.id and got.name == name and sorted(got.tools) == sorted(a.tools)
    assert got.memory.get_block("human").value == "First name: Ada"
    assert client.agent_exists(a.id) is True
    assert client.agent_exists(MISSING_AGENT) is False
    assert a.id in [x.id for x in client.list_agents()]

    updated = client.update_agent(a.id, description="a test agent", metadata={"k": "w"})
    assert updated.description == "a test agent" and updated.metadata_ == {"k": "w"}
    assert updated.name == name  # what was not sent is kept
    assert client.get_agent(a.id).description == "a test agent"

    new_name = unique("renamed")
    assert client.rename_agent(a.id, new_name).name == new_name
    assert client.get_agent(a.id).name == new_name

    client.delete_agent(a.id)
    assert client.agent_exists(a.id) is False
    assert a.id not in [x.id for x in client.list_agents()]
    with pytest.raises(AssertionError):  # 0.5.1's get_agent asserts a 200
        client.get_agent(a.id)


def test_update_agent_memory_and_system(client, agent):
    mem = agent.memory
    mem.update_block_value("human", "First name: Ada. Lives in Paris.")
    updated = client.update_agent(agent.id, memory=mem, system="You are a terse assistant.")
    assert updated.memory.get_block("human").value == "First name: Ada. Lives in Paris."
    assert updated.system == "You are a terse assistant."
    assert client.get_in_context_memory(agent.id).get_block("human").value == "First name: Ada. Lives in Paris."
    assert client.get_agent(agent.id).system == "You are a terse assistant."


def test_update_agent_tools(client, agent):
    tools = [t for t in agent.tools if t != "conversation_search"]
    updated = client.update_agent(agent.id, tools=tools)
    assert sorted(updated.tools) == sorted(tools)
    assert "conversation_search" not in [t.name for t in client.get_tools_from_agent(agent.id)]


def test_core_memory(client, agent):
    mem = client.get_in_context_memory(agent.id)
    assert mem.get_block("human").value == "First name: Ada"
    assert mem.get_block("human").limit == 2000
    mem = client.update_in_context_memory(agent.id, "human", "First name: Ada. Likes tea.")
    assert mem.get_block("human").value == "First name: Ada. Likes tea."
    assert mem.get_block("persona").value == "I am Sam."
    assert client.get_core_memory(agent.id).get_block("human").value == "First name: Ada. Likes tea."
    assert client.get_agent(agent.id).memory.get_block("human").value == "First name: Ada. Likes tea."
    # The compiled prompt renders like 0.5.1's template.
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
    """0.5.1 asks for Message objects and turns them into its message types
    itself (Message.to_letta_message)."""
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
    assert json.loads(ret.function_return)["status"] == "OK"
    assert resp.usage.step_count == 1 and resp.usage.total_tokens > 0
    # The input and the two messages of the step are in recall memory.
    assert client.get_recall_memory_summary(agent.id).size == before + 3
    # The model saw the user's message.
    last = model.requests()[-1]["Messages"]
    assert any("Hi, I am Ada." in json.dumps(m) for m in last)


def test_user_message_and_full_messages(client, agent, model):
    from letta.schemas.message import Message

    model.script(say("Noted."))
    resp = client.user_message(agent_id=agent.id, message="Remember my name.")
    assert json.loads(resp.messages[1].function_call.arguments) == {"message": "Noted."}

    model.script(say("Full objects.", thought="Answering in full."))
    resp = client.send_message(agent_id=agent.id, message="Again.", role="user", include_full_message=True)
    assert all(isinstance(m, Message) for m in resp.messages)
    assert [m.role for m in resp.messages] == ["assistant", "tool"]
    assert resp.messages[0].text == "Answering in full." and resp.messages[0].agent_id == agent.id
    assert resp.messages[0].tool_calls[0].function.name == "send_message"
    assert resp.messages[1].tool_call_id == resp.messages[0].tool_calls[0].id
    assert all(is_id("message", m.id) for m in resp.messages)


def test_system_message(client, agent, model):
    model.script(say("Understood."))
    resp = client.send_message(agent_id=agent.id, message="[system note] be brief", role="system")
    assert json.loads(resp.messages[1].function_call.arguments) == {"message": "Understood."}
    systems = [m for m in client.get_messages(agent.id) if m.role == "system" and "[system note] be brief" in (m.text or "")]
    assert len(systems) == 1


def test_stream_steps(client, agent, model):
    """0.5.1's reader yields messages and stream statuses; it knows no usage
    chunk (one would raise ValueError in the reader)."""
    from letta.schemas.enums import MessageStreamStatus
    from letta.schemas.letta_message import FunctionCallMessage, FunctionReturn, InternalMonologue

    model.script(say("Streaming hello.", thought="Streaming a step."))
    chunks = list(client.send_message(agent_id=agent.id, message="stream please", role="user", stream_steps=True))
    messages = [c for c in chunks if not isinstance(c, MessageStreamStatus)]
    statuses = [c for c in chunks if isinstance(c, MessageStreamStatus)]
    assert [type(m) for m in messages] == [InternalMonologue, FunctionCallMessage, FunctionReturn]
    assert messages[0].internal_monologue == "Streaming a step."
    assert json.loads(messages[1].function_call.arguments) == {"message": "Streaming hello."}
    assert messages[2].status == "success" and messages[2].function_call_id == messages[1].function_call.function_call_id
    assert chunks[-1] == MessageStreamStatus.done and statuses.count(MessageStreamStatus.done) == 1
    # 0.5's framing: [DONE_GEN] before the step's items, [DONE_STEP] after.
    assert chunks[0] == MessageStreamStatus.done_generation
    assert chunks[4] == MessageStreamStatus.done_step
    # The streamed step is stored like a plain one.
    history = client.get_messages(agent.id)
    assert any(m.role == "user" and "stream please" in (m.text or "") for m in history)
    assert any(m.id == messages[1].id and m.tool_calls for m in history)


def test_stream_tokens(client, agent, model):
    from letta.schemas.enums import MessageStreamStatus
    from letta.schemas.letta_message import FunctionCallMessage, FunctionReturn, InternalMonologue

    model.script(say("Token hello.", thought="Thinking in tokens now."))
    chunks = list(client.send_message(agent_id=agent.id, message="tokens please", role="user",
                                      stream_steps=True, stream_tokens=True))
    thoughts = [c for c in chunks if isinstance(c, InternalMonologue)]
    assert thoughts and "".join(t.internal_monologue for t in thoughts) == "Thinking in tokens now."
    assert len({t.id for t in thoughts}) == 1
    calls = [c for c in chunks if isinstance(c, FunctionCallMessage)]
    assert calls and calls[0].function_call.name == "send_message"
    assert json.loads("".join(c.function_call.arguments or "" for c in calls)) == {"message": "Token hello."}
    returns = [c for c in chunks if isinstance(c, FunctionReturn)]
    assert len(returns) == 1 and returns[0].status == "success"
    assert chunks[-1] == MessageStreamStatus.done


def test_stream_tokens_alone_streams(client, agent, model):
    """send_message(stream_tokens=True) sends stream_tokens without
    stream_steps. 0.5.1's server refused that (400 "stream_steps must be
    'true' if stream_tokens is 'true'"), so its own client's token streaming
    never worked; engram does what the caller asked and streams."""
    from letta.schemas.enums import MessageStreamStatus
    from letta.schemas.letta_message import FunctionCallMessage, InternalMonologue

    model.script(say("Token hello.", thought="Tokens, one by one."))
    chunks = list(client.send_message(agent_id=agent.id, message="tokens alone", role="user", stream_tokens=True))
    thoughts = [c for c in chunks if isinstance(c, InternalMonologue)]
    assert "".join(t.internal_monologue for t in thoughts) == "Tokens, one by one."
    calls = [c for c in chunks if isinstance(c, FunctionCallMessage)]
    assert json.loads(calls[0].function_call.arguments) == {"message": "Token hello."}
    assert chunks[-1] == MessageStreamStatus.done


def test_messages_and_update_message(client, agent, model):
    model.script(say("I will remember."))
    client.send_message(agent_id=agent.id, message="My cat is Turing.", role="user")

    # Recall, newest first (0.5.1's server read its cursor reversed).
    history = client.get_messages(agent.id)
    assert all(is_id("message", m.id) for m in history)
    assert [m.created_at for m in history] == sorted((m.created_at for m in history), reverse=True)
    users = [m for m in history if m.role == "user" and "My cat is Turing." in (m.text or "")]
    assert len(users) == 1
    assistants = [m for m in history if m.role == "assistant" and m.tool_calls]
    assert json.loads(assistants[0].tool_calls[0].function.arguments) == {"message": "I will remember."}
    assert [m.id for m in client.get_messages(agent.id, limit=2)] == [m.id for m in history[:2]]

    in_context = client.get_in_context_messages(agent.id)
    assert in_context[0].role == "system"
    assert [m.id for m in in_context] == client.get_agent(agent.id).message_ids
    target = [m for m in in_context if m.role == "assistant" and m.tool_calls][-1]
    updated = client.update_message(agent.id, target.id, text="I thought again.")
    assert updated.id == target.id and updated.text == "I thought again."
    again = {m.id: m for m in client.get_in_context_messages(agent.id)}
    assert again[target.id].text == "I thought again."
    assert again[target.id].tool_calls[0].function.name == "send_message"


def test_humans_and_personas(client):
    from letta.schemas.block import Human, Persona

    hname, pname = unique("human"), unique("persona")
    h = client.create_human(name=hname, text="First name: Grace")
    assert isinstance(h, Human) and is_id("block", h.id)
    assert h.label == "human" and h.name == hname and h.template is True and h.value == "First name: Grace"
    assert client.get_human_id(hname) == h.id
    assert client.get_human(h.id).value == "First name: Grace"
    assert hname in [x.name for x in client.list_humans()]
    assert all(x.label == "human" for x in client.list_humans())
    assert client.update_human(h.id, text="First name: Grace Hopper").value == "First name: Grace Hopper"
    got = client.get_human(h.id)
    assert got.value == "First name: Grace Hopper" and got.name == hname and got.label == "human"
    assert got.template is True and client.get_human_id(hname) == h.id  # still a template
    assert client.delete_human(h.id).id == h.id
    assert client.get_human(h.id) is None
    assert hname not in [x.name for x in client.list_humans()]

    p = client.create_persona(name=pname, text="I am a pirate.")
    assert isinstance(p, Persona) and p.label == "persona" and p.name == pname
    assert client.get_persona_id(pname) == p.id
    assert client.get_persona(p.id).value == "I am a pirate."
    assert pname in [x.name for x in client.list_personas()]
    assert pname not in [x.name for x in client.list_humans()]
    assert client.update_persona(p.id, text="I am a polite pirate.").value == "I am a polite pirate."
    assert client.get_persona(p.id).value == "I am a polite pirate."
    assert client.delete_persona(p.id).id == p.id
    assert client.get_persona(p.id) is None


def test_blocks(client):
    name = unique("note")
    b = client.create_block(label="note", name=name, text="buy milk")
    assert is_id("block", b.id) and b.label == "note" and b.name == name and b.value == "buy milk"
    assert b.template is True and b.limit == 2000
    assert client.get_block(b.id).value == "buy milk"
    assert client.get_block_id(name=name, label="note") == b.id
    assert client.get_block_id(name=unique("nothing"), label="note") is None
    assert b.id in [x.id for x in client.list_blocks(label="note")]
    assert b.id in [x.id for x in client.list_blocks()]

    # 0.5.1's update_block sends every field of UpdateBlock, with the label
    # copied from the name and template false by its own validators; 0.5.1's
    # server (SyncServer.update_block) changed only value, name and limit.
    renamed = unique("note")
    updated = client.update_block(b.id, name=renamed, text="buy oat milk")
    assert updated.id == b.id and updated.value == "buy oat milk" and updated.name == renamed
    got = client.get_block(b.id)
    assert got.value == "buy oat milk" and got.name == renamed
    assert got.label == "note" and got.template is True
    assert client.get_block_id(name=renamed, label="note") == b.id
    assert b.id in [x.id for x in client.list_blocks(label="note")]

    assert client.delete_block(b.id).value == "buy oat milk"
    assert client.get_block(b.id) is None
    assert b.id not in [x.id for x in client.list_blocks(label="note")]


def test_tools(client, agent, model):
    from letta.schemas.tool import Tool

    name = "forecast_" + unique("t").split("-")[1]
    t = client.create_tool(make_function(name), tags=["weather"])
    assert isinstance(t, Tool) and is_id("tool", t.id) and t.name == name and t.tags == ["weather"]
    assert t.json_schema["name"] == name and "city" in t.json_schema["parameters"]["properties"]
    assert f"def {name}(" in t.source_code and t.source_type == "python"
    assert client.get_tool(t.id).name == name
    assert client.get_tool_id(name) == t.id
    assert client.get_tool_id("no_such_tool_anywhere") is None
    assert name in [x.name for x in client.list_tools(limit=1000)]
    assert len(client.list_tools(limit=2)) == 2

    assert client.update_tool(t.id, tags=["weather", "demo"]).tags == ["weather", "demo"]
    assert client.get_tool(t.id).tags == ["weather", "demo"]
    updated = client.update_tool(t.id, func=make_function(name, word="rainy"))
    assert '"rainy in' in updated.source_code or "f\"rainy in" in updated.source_code
    assert updated.name == name and updated.tags == ["weather", "demo"]
    assert "rainy in" in client.get_tool(t.id).source_code

    assert name in client.add_tool_to_agent(agent.id, t.id).tools
    assert name in [x.name for x in client.get_tools_from_agent(agent.id)]
    assert name in client.get_agent(agent.id).tools
    # The agent calls it; the sandbox runs the updated source.
    model.script({"Content": "Let me check.", "ToolCalls": [call(name, {"city": "Paris", "days": 2, "request_heartbeat": True})]},
                 say("Rainy in Paris."))
    resp = client.send_message(agent_id=agent.id, message="Weather in Paris?", role="user")
    calls = [m for m in resp.messages if m.message_type == "function_call"]
    assert [c.function_call.name for c in calls] == [name, "send_message"]
    returns = [m for m in resp.messages if m.message_type == "function_return"]
    assert "rainy in Paris for 2 day(s)" in returns[0].function_return and returns[0].status == "success"
    assert returns[0].function_call_id == calls[0].function_call.function_call_id
    assert resp.usage.step_count == 2

    assert name not in client.remove_tool_from_agent(agent.id, t.id).tools
    assert name not in client.get_agent(agent.id).tools
    client.delete_tool(t.id)
    assert client.get_tool(t.id) is None
    assert client.get_tool_id(name) is None


def test_sources_files_and_jobs(client, agent, tmp_path):
    from letta.schemas.enums import JobStatus

    name = unique("docs")
    src = client.create_source(name)
    assert is_id("source", src.id) and src.name == name and src.embedding_config.embedding_dim == 64
    assert src.user_id
    assert client.get_source(src.id).name == name
    assert client.get_source_id(name) == src.id
    assert src.id in [s.id for s in client.list_sources()]
    renamed = unique("manuals")
    assert client.update_source(src.id, name=renamed).name == renamed
    assert client.get_source(src.id).name == renamed
    assert client.get_source_id(renamed) == src.id

    f = tmp_path / "pump.txt"
    f.write_text("The pump needs oil every six months. Use grade 30 oil.\n" * 20)
    job = client.load_file_to_source(str(f), src.id, blocking=True)
    assert job.status == JobStatus.completed and is_id("job", job.id) and job.user_id
    assert client.get_job(job.id).status == JobStatus.completed
    assert job.id in [j.id for j in client.list_jobs()]
    assert job.id not in [j.id for j in client.list_active_jobs()]

    files = client.list_files_from_source(src.id)
    assert [x.file_name for x in files] == ["pump.txt"] and files[0].source_id == src.id
    assert is_id("file", files[0].id) and files[0].user_id
    assert files[0].file_size == f.stat().st_size

    before = client.get_archival_memory_summary(agent.id).size
    client.attach_source_to_agent(source_id=src.id, agent_id=agent.id)
    assert [s.id for s in client.list_attached_sources(agent.id)] == [src.id]
    assert client.get_archival_memory_summary(agent.id).size > before
    assert any("grade 30 oil" in p.text for p in client.get_archival_memory(agent.id))
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
    with pytest.raises(ValueError):
        client.get_source(src.id)


def test_one_store_three_surfaces(client, engram_url):
    """An agent made through the modern API is the same agent through 0.5.1,
    and an edit through 0.5.1 is seen through 0.5.5's surface."""
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
    r = requests.get(f"{engram_url}/letta-0.5/v1/agents/{a.id}/memory", headers=headers)
    assert r.status_code == 200 and r.json()["memory"]["human"]["value"] == "First name: Linus. Writes kernels."
    client.delete_agent(a.id)
    assert requests.get(f"{engram_url}/v1/agents/{a.id}", headers=headers).status_code == 404


def test_bad_input_gets_4xx_and_changes_nothing(client, engram_url):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = f"{engram_url}/letta-0.5.1/v1"
    agents, tools, blocks = len(client.list_agents()), len(client.list_tools(limit=1000)), len(client.list_blocks())
    cases = [
        ("POST", "/agents", {"name": "bad name!", "tools": []}, 422),
        ("POST", "/agents", {"nonsense": 1}, 422),
        ("POST", "/agents", "not json", 400),
        ("GET", "/agents/" + MISSING_AGENT, None, 404),
        ("GET", "/agents/not-an-id", None, None),
        ("PATCH", "/agents/" + MISSING_AGENT, {"id": MISSING_AGENT, "name": "x"}, 404),
        ("POST", "/blocks", {"value": "x"}, 422),
        ("POST", "/blocks", {"label": "note", "value": "x", "nonsense": 1}, 422),
        ("POST", "/tools", {"name": "no_source"}, 422),
        ("POST", "/agents/" + MISSING_AGENT + "/messages", {"messages": [{"role": "user", "text": "hi"}]}, 404),
        ("POST", "/agents/" + MISSING_AGENT + "/messages", {"messages": [{"role": "assistant", "text": "hi"}]}, 422),
        ("GET", "/sources/source-00000000-0000-4000-8000-000000000000", None, 404),
        ("GET", "/jobs/job-00000000-0000-4000-8000-000000000000", None, 404),
    ]
    for method, path, body, want in cases:
        if isinstance(body, str):
            r = requests.request(method, base + path, headers={**headers, "Content-Type": "application/json"}, data=body)
        else:
            r = requests.request(method, base + path, headers=headers, json=body)
        assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text)
        if want:
            assert r.status_code == want, (method, path, r.status_code, r.text)
        assert isinstance(r.json()["detail"], str) and r.json()["detail"], (method, path, r.text)
    assert len(client.list_agents()) == agents
    assert len(client.list_tools(limit=1000)) == tools
    assert len(client.list_blocks()) == blocks
    r = requests.get(base + "/agents", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and "detail" in r.json()


@pytest.fixture
def no_requests(monkeypatch):
    """Makes any HTTP request through requests or httpx fail the test, so a
    call that raises under it raised before sending anything."""
    import httpx

    def refuse(*args, **kwargs):
        raise AssertionError(f"a request was sent: {args[:2]}")

    for verb in ["get", "post", "put", "patch", "delete", "request"]:
        monkeypatch.setattr(requests, verb, refuse)
    monkeypatch.setattr(httpx.Client, "send", refuse)


def test_unimplemented_client_side(client, no_requests):
    """Methods letta 0.5.1's RESTClient does not implement, or cannot send:
    each raises before any request, whatever the server."""
    from pydantic import ValidationError

    with pytest.raises(NotImplementedError):
        client.get_agent_id("anyone")
    with pytest.raises(NotImplementedError):
        client.save()
    with pytest.raises(NotImplementedError):
        client.load_data(None, "x")
    # update_block without a name: UpdateBlock's validator copies the absent
    # name into the label, which revalidates, forever.
    with pytest.raises(RecursionError):
        client.update_block("block-00000000-0000-4000-8000-000000000000", text="x")
    # create_tool without tags: ToolCreate refuses tags=None.
    with pytest.raises(ValidationError):
        client.create_tool(make_function("untagged_tool"))
    # 0.5.1's RESTClient has no tags on agents, no base-tool or org methods.
    for missing in ["add_base_tools", "list_orgs", "create_org", "delete_org"]:
        assert not hasattr(client, missing), missing
    assert "tags" not in inspect.signature(client.list_agents).parameters
    assert "tags" not in inspect.signature(client.create_agent).parameters
