-- Issue 23, review: a claim asks each enabled subscription for its oldest due deliveries, by this
-- index, instead of numbering every due delivery of every organization (src/events/deliveries.ts).
CREATE INDEX "event_deliveries_subscription_id_status_next_attempt_at_seq_idx" ON "event_deliveries"("subscription_id", "status", "next_attempt_at", "seq");
