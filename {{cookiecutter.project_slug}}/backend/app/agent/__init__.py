# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The agent: the chat routes' loop (loop.py) over the tools in tools.py (yours), traced as the
GenAI semantic conventions describe (telemetry/agent.py).

    registry.py   the tool contract: name, description, argument schema from type hints, async function
    loop.py       the loop, its bounds (AGENT_MAX_STEPS, AGENT_MAX_TOOL_CALLS, AGENT_TOOL_TIMEOUT), its events
    tools.py      the tools the model is offered: add yours there
"""

from .loop import Agent, AgentError, AgentReply, Finished, TextDelta, ToolDone, ToolRequested, ToolStep
from .registry import Tool, ToolContext, ToolRegistry, make_tool

__all__ = [
    "Agent",
    "AgentError",
    "AgentReply",
    "Finished",
    "TextDelta",
    "Tool",
    "ToolContext",
    "ToolDone",
    "ToolRegistry",
    "ToolRequested",
    "ToolStep",
    "make_tool",
]
