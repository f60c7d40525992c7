"""Activities of the four workflows, one blueprint per workflow."""

from activities import approvals, documents, exports, orders

blueprints = [orders.bp, documents.bp, exports.bp, approvals.bp]

__all__ = ["blueprints"]
