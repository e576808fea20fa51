-- Example business schema for the PostgreSQL probe's business metrics (the spec's tables).
CREATE SCHEMA IF NOT EXISTS business_hs;
CREATE SCHEMA IF NOT EXISTS business_core;

CREATE TABLE IF NOT EXISTS business_hs.work_orders (
    id             serial PRIMARY KEY,
    customer_id    integer NOT NULL,
    status         text NOT NULL CHECK (status IN ('pending', 'in_progress', 'completed', 'cancelled')),
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    scheduled_date date NOT NULL
);

CREATE TABLE IF NOT EXISTS business_core.invoices (
    id           serial PRIMARY KEY,
    customer_id  integer NOT NULL,
    status       text NOT NULL CHECK (status IN ('draft', 'sent', 'paid', 'void')),
    total_amount numeric(12, 2) NOT NULL,
    created_at   timestamptz NOT NULL,
    paid_at      timestamptz
);

CREATE TABLE IF NOT EXISTS business_core.customers (
    id    integer PRIMARY KEY,
    name  text NOT NULL,
    state text NOT NULL
);

-- The spec's customer geography: one row per customer with its state and paid revenue.
CREATE OR REPLACE VIEW business_core.customer_geography_view AS
SELECT c.id AS customer_id, c.state,
       COALESCE(SUM(i.total_amount) FILTER (WHERE i.status = 'paid'), 0) AS total_revenue
FROM business_core.customers c
LEFT JOIN business_core.invoices i ON i.customer_id = c.id
GROUP BY c.id, c.state;

-- The probe's least-privilege role: catalog statistics plus read access to these tables.
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'thorbis_probe') THEN
        CREATE ROLE thorbis_probe LOGIN;
    END IF;
END $$;
GRANT pg_monitor TO thorbis_probe;
GRANT USAGE ON SCHEMA business_hs, business_core TO thorbis_probe;
GRANT SELECT ON ALL TABLES IN SCHEMA business_hs, business_core TO thorbis_probe; -- views too
