-- The demo's business database (SQLite): the spec's tables as examples/postgres/schema.sql has
-- them, and the same seed relative to now (examples/postgres/seed.sql), so the executive
-- board shows the same numbers: monthly revenue 1,250.50 (800 the month before), 4 active
-- customers (1 in the 30 days before), completion 3 of 8 (37.5%), customers TX 4, CA 3, NY 2.
CREATE TABLE IF NOT EXISTS work_orders (
    id             INTEGER PRIMARY KEY,
    customer_id    INTEGER NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'in_progress', 'completed', 'cancelled')),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    scheduled_date TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS invoices (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('draft', 'sent', 'paid', 'void')),
    total_amount REAL NOT NULL,
    created_at   TEXT NOT NULL,
    paid_at      TEXT
);
CREATE TABLE IF NOT EXISTS customers (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL,
    state TEXT NOT NULL
);
CREATE VIEW IF NOT EXISTS customer_geography_view AS
SELECT c.id AS customer_id, c.state,
       COALESCE(SUM(CASE WHEN i.status = 'paid' THEN i.total_amount END), 0) AS total_revenue
FROM customers c LEFT JOIN invoices i ON i.customer_id = c.id
GROUP BY c.id, c.state;

DELETE FROM work_orders;
DELETE FROM invoices;
DELETE FROM customers;

INSERT INTO customers (id, name, state) VALUES
  (1, 'Lone Star Plumbing', 'TX'), (2, 'Bay Area HVAC', 'CA'), (3, 'Austin Electric', 'TX'),
  (4, 'Brooklyn Roofing', 'NY'), (5, 'Dallas Pools', 'TX'), (6, 'Queens Pest Control', 'NY'),
  (7, 'Houston Landscaping', 'TX'), (8, 'Fresno Solar', 'CA'), (9, 'San Diego Windows', 'CA');

INSERT INTO work_orders (customer_id, status, created_at, updated_at, scheduled_date) VALUES
  (1, 'pending',     datetime('now', '-2 hours'),  datetime('now', '-2 hours'),  date('now', '+1 day')),
  (2, 'in_progress', datetime('now', '-4 hours'),  datetime('now', '-1 hour'),   date('now')),
  (3, 'pending',     datetime('now', '-6 hours'),  datetime('now', '-6 hours'),  date('now', '-1 day')),
  (4, 'in_progress', datetime('now', '-8 hours'),  datetime('now', '-3 hours'),  date('now', '-2 days')),
  (1, 'completed',   datetime('now', '-2 hours'),  datetime('now', '-1 hour'),   date('now')),
  (2, 'completed',   datetime('now', '-3 hours'),  datetime('now'),              date('now')),
  (5, 'completed',   datetime('now', '-50 hours'), datetime('now', '-40 hours'), date('now', '-3 days')),
  (6, 'cancelled',   datetime('now', '-5 hours'),  datetime('now', '-4 hours'),  date('now'));

INSERT INTO invoices (customer_id, status, total_amount, created_at, paid_at) VALUES
  (1, 'paid', 500.00, datetime('now'), datetime('now')),
  (2, 'paid', 450.25, datetime('now'), datetime('now')),
  (3, 'paid', 300.25, datetime('now'), datetime('now')),
  (4, 'sent', 999.99, datetime('now'), NULL),
  (7, 'paid', 800.00, datetime('now', '-35 days'), datetime('now', '-35 days')),
  (9, 'paid', 100.00, datetime('now', '-90 days'), datetime('now', '-90 days'));
