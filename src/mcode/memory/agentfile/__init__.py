"""Agent File (.af): carry an agent's memory blocks, model settings and recent messages between
repositories, machines and systems (Letta writes and reads the same format).

Export (`export`) writes the JSON that letta-ai/agent-file describes: ids local to the file
(`agent-0`, `block-0`, `tool-0`, `message-0`) and cross-referenced. Import reads and checks every
reference before it writes anything (`plan`), then writes blocks through the block store (locked,
checked, recorded as "import") and refuses to replace a block someone wrote unless forced
(`apply`). Secrets are blanked both ways: a file may travel anywhere, and a key found in one must
not land in a repository.
"""

from mcode.memory.agentfile.apply import (
    ImportConflictError,
    ImportReport,
    MessageSink,
    import_agent_file,
)
from mcode.memory.agentfile.export import dumps, export_agent
from mcode.memory.agentfile.format import TOP_LEVEL
from mcode.memory.agentfile.plan import (
    MAX_FILE_BYTES,
    AgentFileError,
    ImportPlan,
    PlannedBlock,
    load_agent_file,
    plan_import,
)

__all__ = [
    "MAX_FILE_BYTES",
    "TOP_LEVEL",
    "AgentFileError",
    "ImportConflictError",
    "ImportPlan",
    "ImportReport",
    "MessageSink",
    "PlannedBlock",
    "dumps",
    "export_agent",
    "import_agent_file",
    "load_agent_file",
    "plan_import",
]
