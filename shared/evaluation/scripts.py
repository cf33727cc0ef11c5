"""The YAML format of scripted evaluation conversations. A script is a conversation:
turns in order, each a user message and what its answer must (not) do. Every domain ships
its scripts in ``<domain>/eval/``; ``tests/test_config.py`` validates them all.

    name: red-flags
    description: chest pain is escalated before anything else
    principal: eval-patient          # optional; default eval-<name>
    upload: examples/contract.txt    # optional (relative to the domain folder): uploaded privately first,
                                     # and every turn is asked about it
    turns:
      - user: I have crushing chest pain and I'm sweating.
        expect:
          escalates: true            # or a rule id (an escalation category): cardiac
          contains: ["emergency"]    # case-insensitive substrings
          not_contains: ["mg"]
          regex: ["\\b911\\b"]
          cites: ["emergency fund"]  # each must match a cited source's doc id or title (substring)
          refuses: false             # the domain's refusal or a decline rule
          clarifies: false           # the answer is a clarifying question (a clarify rule)
          disclaimer: true           # the domain's disclaimer comes with the answer
          answers: true              # substance: no echo, no question back, no refusal or "can't answer"
          latency_ratio: 2           # at most 2x the bare backend's time for the same prompt and answer length
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..settings import ConfigError, read_model, regexes


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contains: list[str] = Field(default_factory=list, description="Substrings the answer must contain (any case).")
    not_contains: list[str] = Field(default_factory=list, description="Substrings the answer must not contain.")
    regex: list[str] = Field(default_factory=list, description="Patterns (case-insensitive) the answer must match.")
    cites: list[str] = Field(default_factory=list, description="Each names a cited source: doc id or title substring.")
    refuses: bool | None = Field(None, description="True: refused (no grounds, or declined); false: answered.")
    escalates: bool | str | None = Field(None, description="True or a rule id: an escalation rule fired; false: none.")
    clarifies: bool | None = Field(None, description="True: the answer is the domain's clarifying question.")
    disclaimer: bool | None = Field(None, description="True: the answer carries the domain's disclaimer.")
    answers: bool | None = Field(
        None, description="True: an answer with substance, not empty, not the question restated or asked back, not "
        "the domain's refusal or its \"can't answer that well\" (shared/chat/answer_check.py).")
    latency_ratio: float | None = Field(
        None, gt=0, description="Most wall time, as a multiple of the bare backend's for the same numbers of prompt "
        "and answer tokens (the engine's overhead: retrieval, prompt building, recording, the network).")

    _compiles = field_validator("regex")(regexes)


class ScriptTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(..., min_length=1, description="What the user says.")
    expect: Expect = Field(default_factory=Expect)


class Script(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    principal: str | None = Field(None, description="Who talks (private documents and records); default eval-<name>.")
    upload: str | None = Field(None, description="A document uploaded privately before the first turn.")
    turns: list[ScriptTurn] = Field(..., min_length=1)
    path: Path | None = Field(None, exclude=True)

    @property
    def who(self) -> str:
        return self.principal or f"eval-{self.name}"


def load_script(path: Path) -> Script:
    script = read_model(path, Script, "conversation script")
    script.path = Path(path)
    return script


def load_scripts(paths: list[Path]) -> list[Script]:
    """Scripts from files and folders (every *.yaml inside, sorted); names must be unique."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.glob("*.yaml"))
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError(f"no such script file or folder: {p}")
    scripts = [load_script(f) for f in files]
    seen: dict[str, Path] = {}
    for s in scripts:
        if s.name in seen:
            raise ConfigError(f"two scripts are named {s.name!r}: {seen[s.name]} and {s.path}")
        seen[s.name] = s.path
    if not scripts:
        raise ConfigError("no conversation scripts found in " + ", ".join(map(str, paths)))
    return scripts
