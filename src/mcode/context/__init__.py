"""Context management: what one request to the model holds, and keeping it within the window.

The system prompt is built from `prompts/system.md` and budgeted sections (`system_prompt`); the
conversation lives in a `MessageWindow` that warns at about 70% of the budget and evicts into a
recursive summary at about 90% (`window`); `budget` splits the model's window and counts tokens.
Data flows one way: the agent hands this package blocks, statistics, a repo-map source, snippets
and a model client through small Protocols; nothing here imports the agent.

Per request:

    context = build_context(builder, window, inputs)   # [system, summary?, *messages]
    turn = client.complete(context.messages, tools=list(inputs.tools))
"""

from mcode.context.budget import (
    DEFAULT_SHARES,
    ContextBudget,
    ContextOverflowError,
    ContextReport,
    SectionUsage,
    Share,
    TokenCounter,
    estimate_tokens,
    message_tokens,
    messages_tokens,
)
from mcode.context.system_prompt import (
    BrokenCoreBlock,
    CoreBlock,
    Countable,
    Environment,
    MemoryStats,
    PromptInputs,
    RepoMapSource,
    SystemPrompt,
    SystemPromptBuilder,
    TemplateError,
    fill_template,
    render_template,
)
from mcode.context.window import (
    SUMMARY_HEADER,
    CompletionClient,
    Context,
    Eviction,
    LLMSummarizer,
    MessageWindow,
    Summarizer,
    build_context,
)
from mcode.survey.instructions import InstructionFile, read_project_instructions

__all__ = [
    "DEFAULT_SHARES",
    "SUMMARY_HEADER",
    "BrokenCoreBlock",
    "CompletionClient",
    "Context",
    "ContextBudget",
    "ContextOverflowError",
    "ContextReport",
    "CoreBlock",
    "Countable",
    "Environment",
    "Eviction",
    "InstructionFile",
    "LLMSummarizer",
    "MemoryStats",
    "MessageWindow",
    "PromptInputs",
    "RepoMapSource",
    "SectionUsage",
    "Share",
    "Summarizer",
    "SystemPrompt",
    "SystemPromptBuilder",
    "TemplateError",
    "TokenCounter",
    "build_context",
    "estimate_tokens",
    "fill_template",
    "message_tokens",
    "messages_tokens",
    "read_project_instructions",
    "render_template",
]
