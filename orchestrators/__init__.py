"""HTTP starters and orchestrators of the four Durable Functions patterns, one blueprint per pattern,
and two small storage-backed blueprints beside them: a queue that starts orders (`order_inbox`) and
word-count reports in Blob Storage (`word_count_reports`). The four patterns never need storage."""

from orchestrators import approval, async_job, chaining, fan_out, order_inbox, word_count_reports

blueprints = [chaining.bp, fan_out.bp, async_job.bp, approval.bp, order_inbox.bp, word_count_reports.bp]

__all__ = ["blueprints"]
