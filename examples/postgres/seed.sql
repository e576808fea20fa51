-- Seed data, relative to now so the numbers are the same whenever it is loaded:
--   active work orders (pending + in_progress): 4, created 2, 4, 6 and 8 hours ago -> avg age 5 h
--   overdue (active and scheduled before today): 2
--   completed today: 2, taking 1 h and 3 h -> avg completion 2 h (created and finished today,
--   as long as the seed is loaded after 03:00 local time)
--   paid invoices this month: 3 totalling 1250.50; active customers (30 days): 4
-- and for the built-in executive board:
--   monthly revenue: 1250.50 this month, 800 the month 35 days ago (the previous row)
--   active customers: 4 in the last 30 days, 1 in the 30 before; completion 3 of 8 (37.5%)
--   customers by state: TX 4 (revenue 500 + 300.25 + 800), CA 3 (450.25 + 100), NY 2
TRUNCATE business_hs.work_orders, business_core.invoices, business_core.customers RESTART IDENTITY;

INSERT INTO business_core.customers (id, name, state) VALUES
  (1, 'Lone Star Plumbing', 'TX'), (2, 'Bay Area HVAC', 'CA'), (3, 'Austin Electric', 'TX'),
  (4, 'Brooklyn Roofing', 'NY'), (5, 'Dallas Pools', 'TX'), (6, 'Queens Pest Control', 'NY'),
  (7, 'Houston Landscaping', 'TX'), (8, 'Fresno Solar', 'CA'), (9, 'San Diego Windows', 'CA');

INSERT INTO business_hs.work_orders (customer_id, status, created_at, updated_at, scheduled_date) VALUES
  (1, 'pending',     now() - interval '2 hours', now() - interval '2 hours', CURRENT_DATE + 1),
  (2, 'in_progress', now() - interval '4 hours', now() - interval '1 hour',  CURRENT_DATE),
  (3, 'pending',     now() - interval '6 hours', now() - interval '6 hours', CURRENT_DATE - 1),
  (4, 'in_progress', now() - interval '8 hours', now() - interval '3 hours', CURRENT_DATE - 2),
  (1, 'completed',   now() - interval '2 hours', now() - interval '1 hour',  CURRENT_DATE),
  (2, 'completed',   now() - interval '3 hours', now(),                      CURRENT_DATE),
  (5, 'completed',   now() - interval '50 hours', now() - interval '40 hours', CURRENT_DATE - 3),
  (6, 'cancelled',   now() - interval '5 hours', now() - interval '4 hours', CURRENT_DATE);

INSERT INTO business_core.invoices (customer_id, status, total_amount, created_at, paid_at) VALUES
  (1, 'paid', 500.00, now(), now()),
  (2, 'paid', 450.25, now(), now()),
  (3, 'paid', 300.25, now(), now()),
  (4, 'sent', 999.99, now(), NULL),
  (7, 'paid', 800.00, now() - interval '35 days', now() - interval '35 days'),
  (9, 'paid', 100.00, now() - interval '90 days', now() - interval '90 days');
