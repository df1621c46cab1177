-- A subscription's deliveries are listed newest first in the order they were stored (their ids are random).
CREATE INDEX "event_deliveries_subscription_id_seq_idx" ON "event_deliveries"("subscription_id", "seq");
