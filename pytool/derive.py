# derive.py is embedded in the pytool Go package and run as
#
#     python3 -I -S -c <this script>
#
# It reads {"source": "<python source>"} as JSON on stdin and writes one JSON
# object on stdout: either
#
#     {"name": ..., "description": ..., "parameters": {...}, "agent_state": bool}
#
# or {"error": "<message>"} when the source itself is at fault. Any other
# failure (a bug here, a crash) exits non-zero with a traceback on stderr.
#
# The source is only parsed with ast.parse; nothing in it is ever executed,
# imported or evaluated. Type annotations are interpreted structurally.
#
# Keep this compatible with Python 3.8+ (ast.Index, no match statements).

import ast
import json
import re
import sys

PREFIX = "Failed to generate schema for tool: "

HEARTBEAT_DESCRIPTION = (
    "Request an immediate heartbeat after function execution. "
    "Set to `True` if you want to send a follow-up message or run a follow-up function."
)
NO_HEARTBEAT = ("send_message", "pause_heartbeats")

BASIC_TYPES = {"int": "integer", "str": "string", "bool": "boolean", "float": "number"}
TYPING_MODULES = ("typing", "typing_extensions")

# Google-style section titles. Only the argument sections are read; the others
# matter only for telling whether the docstring's first line is a title.
ARG_TITLES = {
    "args",
    "arguments",
    "parameters",
    "params",
    "keyword args",
    "keyword arguments",
    "other parameters",
}
OTHER_TITLES = {
    "attributes",
    "example",
    "examples",
    "except",
    "exceptions",
    "note",
    "notes",
    "raises",
    "references",
    "return",
    "returns",
    "see also",
    "todo",
    "warning",
    "warnings",
    "warns",
    "yield",
    "yields",
}
TITLE_RE = re.compile(r"^([A-Za-z][A-Za-z ]*?)\s*:\s*$")
TYPED_NAME_RE = re.compile(r"^(\S+?)\s*\(.*\)$")


class Invalid(Exception):
    """The source cannot be turned into a tool schema."""


def indent_of(line):
    return len(line) - len(line.lstrip())


def section_title(line):
    m = TITLE_RE.match(line.strip())
    return m.group(1).lower() if m else None


def short_description(doc):
    first = doc.split("\n", 1)[0].strip()
    title = section_title(first)
    if title in ARG_TITLES or title in OTHER_TITLES:
        return ""
    return first


def arg_descriptions(doc):
    """Returns {name: description} from the Google-style Args sections."""
    lines = doc.expandtabs().split("\n")
    descs = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if section_title(line) not in ARG_TITLES:
            i += 1
            continue
        title_indent = indent_of(line)
        i += 1
        item_indent = None
        item = None  # [name, [description parts]]
        while i < len(lines):
            text = lines[i]
            if not text.strip():
                i += 1
                continue
            ind = indent_of(text)
            if ind <= title_indent:
                break
            if item_indent is None:
                item_indent = ind
            if ind <= item_indent:
                add_item(descs, item)
                item = start_item(text.strip())
            elif item is not None:
                item[1].append(text.strip())
            i += 1
        add_item(descs, item)
    return descs


def start_item(text):
    if ":" not in text:
        return None
    before, after = text.split(":", 1)
    before = before.strip()
    m = TYPED_NAME_RE.match(before)
    name = m.group(1) if m else before
    return [name.lstrip("*"), [after.strip()]]


def add_item(descs, item):
    if item is None:
        return
    name, parts = item
    if name not in descs:  # the first entry for a name wins
        descs[name] = " ".join(p for p in parts if p)


def source_text(node, src):
    text = None
    try:
        text = ast.get_source_segment(src, node)
    except Exception:
        text = None
    if text is None and hasattr(ast, "unparse"):
        text = ast.unparse(node)
    if text is None:
        text = "<annotation>"
    return " ".join(text.split())


def unsupported(text):
    return Invalid("Python type %s has no corresponding JSON schema type" % text)


def qualname(node):
    """("", name) for a bare name, ("typing", name) for typing.name, else None."""
    if isinstance(node, ast.Name):
        return ("", node.id)
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in TYPING_MODULES
    ):
        return ("typing", node.attr)
    return None


def is_typing(node, *names):
    q = qualname(node)
    return q is not None and q[1] in names


def subscript_args(node):
    s = node.slice
    if hasattr(ast, "Index") and isinstance(s, getattr(ast, "Index")):
        s = s.value
    if isinstance(s, ast.Tuple):
        return list(s.elts)
    return [s]


def is_none(node):
    return isinstance(node, ast.Constant) and node.value is None


def union_members(node, src):
    """The members of Optional[...], Union[...] or a | b, else None."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        members = []
        stack = [node]
        while stack:  # iterative: long a | b | c ... chains nest deeply
            n = stack.pop()
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr):
                stack.append(n.right)
                stack.append(n.left)
            else:
                members.append(n)
        return members
    if isinstance(node, ast.Subscript):
        if is_typing(node.value, "Optional"):
            args = subscript_args(node)
            if len(args) != 1:
                raise unsupported(source_text(node, src))
            return [args[0], ast.Constant(value=None)]
        if is_typing(node.value, "Union"):
            return subscript_args(node)
    return None


class Deriver:
    def __init__(self, tree, src):
        self.src = src
        self.classes = {}
        for n in tree.body:
            if isinstance(n, ast.ClassDef):
                self.classes[n.name] = n

    # --- pydantic models ---------------------------------------------------

    def model_bases(self, cls, seen):
        """The model classes cls inherits from, or None if it is not a model."""
        if cls.name in seen:
            return None
        seen = seen | {cls.name}
        bases = []
        is_model = False
        for b in cls.bases:
            if isinstance(b, ast.Name) and b.id == "BaseModel":
                is_model = True
            elif (
                isinstance(b, ast.Attribute)
                and b.attr == "BaseModel"
                and isinstance(b.value, ast.Name)
                and b.value.id == "pydantic"
            ):
                is_model = True
            elif isinstance(b, ast.Name) and b.id in self.classes:
                parent = self.classes[b.id]
                if self.model_bases(parent, seen) is not None:
                    is_model = True
                    bases.append(parent)
        return bases if is_model else None

    def model_class(self, node):
        if isinstance(node, ast.Name) and node.id in self.classes:
            cls = self.classes[node.id]
            if self.model_bases(cls, frozenset()) is not None:
                return cls
        return None

    def model_fields(self, cls, src, active, fields):
        for parent in self.model_bases(cls, frozenset()) or []:
            if parent.name in active:
                raise unsupported(parent.name)
            self.model_fields(parent, src, active | {parent.name}, fields)
        for stmt in cls.body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            name = stmt.target.id
            if name.startswith("_") or self.is_classvar(stmt.annotation):
                continue
            schema = self.type_schema(stmt.annotation, src, active)
            description, required = field_info(stmt.value)
            if description is not None:
                schema["description"] = description
            fields[name] = (schema, required)

    def is_classvar(self, node):
        if isinstance(node, ast.Subscript):
            node = node.value
        return is_typing(node, "ClassVar")

    def model_schema(self, cls, active):
        if cls.name in active:  # a model that contains itself
            raise unsupported(cls.name)
        active = active | {cls.name}
        fields = {}
        self.model_fields(cls, self.src, active, fields)
        schema = {
            "type": "object",
            "properties": {name: s for name, (s, _) in fields.items()},
            "required": [name for name, (_, req) in fields.items() if req],
        }
        doc = ast.get_docstring(cls, clean=True)
        if doc:
            schema["description"] = doc
        return schema

    # --- annotations -------------------------------------------------------

    def type_schema(self, node, src, active):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            inner_src = node.value.strip()
            try:
                inner = ast.parse(inner_src, mode="eval").body
            except (SyntaxError, ValueError):
                raise unsupported(" ".join(node.value.split()))
            return self.type_schema(inner, inner_src, active)

        members = union_members(node, src)
        if members is not None:
            rest = [m for m in members if not is_none(m)]
            if len(rest) != 1:
                raise unsupported(source_text(node, src))
            return self.type_schema(rest[0], src, active)

        q = qualname(node)
        if q == ("", "int") or q == ("", "str") or q == ("", "bool") or q == ("", "float"):
            return {"type": BASIC_TYPES[q[1]]}
        if q in (("", "list"), ("", "List"), ("typing", "List")):
            return {"type": "array"}
        if q in (("", "dict"), ("", "Dict"), ("typing", "Dict")):
            return {"type": "object"}

        if isinstance(node, ast.Subscript):
            base = qualname(node.value)
            args = subscript_args(node)
            if base in (("", "list"), ("", "List"), ("typing", "List")):
                if len(args) != 1:
                    raise unsupported(source_text(node, src))
                return {"type": "array", "items": self.type_schema(args[0], src, active)}
            if base in (("", "dict"), ("", "Dict"), ("typing", "Dict")):
                return {"type": "object"}

        cls = self.model_class(node)
        if cls is not None:
            return self.model_schema(cls, active)

        raise unsupported(source_text(node, src))

    # --- the function ------------------------------------------------------

    def function_schema(self, fn):
        doc = ast.get_docstring(fn, clean=True) or ""
        descs = arg_descriptions(doc)
        a = fn.args

        if a.vararg is not None or a.kwarg is not None:
            v = a.vararg if a.vararg is not None else a.kwarg
            stars = "*" if a.vararg is not None else "**"
            raise Invalid(
                "Parameter '%s%s' in function '%s' is variadic, which tools do not support"
                % (stars, v.arg, fn.name)
            )

        positional = list(getattr(a, "posonlyargs", [])) + list(a.args)
        first_default = len(positional) - len(a.defaults)
        params = [(p, i >= first_default) for i, p in enumerate(positional)]
        params += [(p, d is not None) for p, d in zip(a.kwonlyargs, a.kw_defaults)]

        agent_state = False
        properties = {}
        required = []
        for i, (p, has_default) in enumerate(params):
            if p.arg == "agent_state" or (i == 0 and p.arg == "self" and positional):
                agent_state = True
                continue
            if p.annotation is None:
                raise Invalid(
                    "Parameter '%s' in function '%s' lacks a type annotation" % (p.arg, fn.name)
                )
            if not descs.get(p.arg):
                raise Invalid(
                    "Parameter '%s' in function '%s' lacks a description in the docstring"
                    % (p.arg, fn.name)
                )
            schema = self.type_schema(p.annotation, self.src, frozenset())
            schema["description"] = descs[p.arg]
            properties[p.arg] = schema
            if not has_default:
                required.append(p.arg)

        if fn.name not in NO_HEARTBEAT:
            properties["request_heartbeat"] = {
                "type": "boolean",
                "description": HEARTBEAT_DESCRIPTION,
            }
            required.append("request_heartbeat")

        return {
            "name": fn.name,
            "description": short_description(doc),
            "parameters": {"type": "object", "properties": properties, "required": required},
            "agent_state": agent_state,
        }


def field_info(value):
    """(description or None, required) for a model field's assigned value."""
    if value is None:
        return None, True
    if not (isinstance(value, ast.Call) and is_field_call(value.func)):
        return None, False
    description = None
    has_default = False
    if value.args:
        first = value.args[0]
        has_default = not (isinstance(first, ast.Constant) and first.value is Ellipsis)
    for kw in value.keywords:
        if kw.arg == "description":
            if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                description = kw.value.value
        elif kw.arg == "default":
            has_default = not (isinstance(kw.value, ast.Constant) and kw.value.value is Ellipsis)
        elif kw.arg == "default_factory":
            has_default = True
    return description, not has_default


def is_field_call(func):
    if isinstance(func, ast.Name):
        return func.id == "Field"
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "Field"
        and isinstance(func.value, ast.Name)
        and func.value.id == "pydantic"
    )


def derive(src):
    try:
        tree = ast.parse(src, filename="<tool>")
    except SyntaxError as e:
        msg = e.msg or "invalid syntax"
        if e.lineno:
            msg = "%s (line %d)" % (msg, e.lineno)
        raise Invalid(PREFIX + msg)
    except ValueError as e:  # e.g. null bytes, before Python 3.12
        raise Invalid(PREFIX + str(e))
    except (RecursionError, MemoryError):
        raise Invalid(PREFIX + "source is too deeply nested")

    funcs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not funcs:
        raise Invalid(PREFIX + "no function definition found")
    return Deriver(tree, src).function_schema(funcs[-1])


def main():
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    try:
        result = derive(request["source"])
    except Invalid as e:
        result = {"error": str(e)}
    except RecursionError:
        result = {"error": PREFIX + "source is too deeply nested"}
    out = json.dumps(result, ensure_ascii=False)
    sys.stdout.buffer.write(out.encode("utf-8", "replace"))
    sys.stdout.buffer.flush()


main()
