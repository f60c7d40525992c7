"""HTTP starters and orchestrators of the four Durable Functions patterns, one blueprint per pattern."""

from orchestrators import approval, async_job, chaining, fan_out

blueprints = [chaining.bp, fan_out.bp, async_job.bp, approval.bp]

__all__ = ["blueprints"]
