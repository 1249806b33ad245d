"""Module summaries: what each file and directory is for, its main symbols and its ties to the
rest, kept in archival memory and current with the index.

`Refresher` plans and writes them (the queue is what the index holds that the summaries do not
match); the structural generator needs no model. Readers open `store.summaries.SummaryStore`.
"""

from mcode.summary.refresh import FileJob, Plan, Refresher, RunReport, Written, structural

__all__ = ["FileJob", "Plan", "Refresher", "RunReport", "Written", "structural"]
