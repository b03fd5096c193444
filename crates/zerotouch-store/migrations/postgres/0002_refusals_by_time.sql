-- Expired refusal-tracking rows are pruned oldest first.
CREATE INDEX refusals_by_last_audit ON refusals (last_audit_at);
