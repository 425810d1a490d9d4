-- orders.route: the route the order took (status events' data.route, version 1: the pools,
-- amounts in and out, each leg's minimum and share; two legs for a split executed in one
-- transaction). NULL for orders routed before it was recorded, or found on chain only.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS route jsonb;
