-- A database laid out with the conventions real FraiseQL schemas use and our
-- demo does not: uuid keys on a fact table, an integer-coded category,
-- nullable filter columns of several types, document ids that are slugs over
-- uuid columns, a tv_ projection not filled yet beside its v_ view, a plural
-- view name with __typename keys, nested objects and lists of objects, and
-- row-level security by a session setting. Deterministic: every value is
-- derived from generate_series.

-- ------------------------------------------------------------ fact table
CREATE TABLE tf_orders (
    id          uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    product_id  uuid,                  -- nullable uuid
    status_code integer NOT NULL,      -- integer-coded category: a measure and a group key
    amount      numeric(12, 2) NOT NULL,
    quantity    smallint NOT NULL,
    ordered_on  date NOT NULL,
    shipped_on  date,                  -- nullable date
    is_gift     boolean,               -- nullable boolean
    channel     varchar(12),           -- nullable varchar
    client_ip   inet,                  -- a type the arrow plane declines
    occurred_at timestamptz NOT NULL,
    data        jsonb NOT NULL         -- dimensions
);
INSERT INTO tf_orders
SELECT md5('order-' || i)::uuid,
       md5('customer-' || (i % 23))::uuid,
       CASE WHEN i % 9 = 0 THEN NULL ELSE md5('product-' || (i % 11))::uuid END,
       (i * 7) % 4,
       round(((i * 37) % 1000) / 7.0, 2),
       (1 + i % 5)::smallint,
       date '2024-01-01' + (i % 90),
       CASE WHEN i % 4 = 0 THEN NULL ELSE date '2024-01-03' + (i % 90) END,
       CASE WHEN i % 5 = 0 THEN NULL ELSE i % 3 = 0 END,
       CASE i % 6 WHEN 0 THEN NULL WHEN 1 THEN 'web' WHEN 2 THEN 'store' WHEN 3 THEN 'Web'
                  WHEN 4 THEN 'éclair' ELSE 'phone' END,
       ('10.1.' || (i % 3) || '.' || (i % 7))::inet,
       timestamptz '2024-01-01 00:00:00+00' + (i * interval '47 minutes'),
       jsonb_build_object('region', (ARRAY['EU', 'NA', 'APAC'])[1 + i % 3],
                          'product', jsonb_build_object('category',
                                                        (ARRAY['books', 'toys', 'garden', 'food'])[1 + i % 4],
                                                        'size', i % 6))
FROM generate_series(1, 2000) AS i;

-- --------------------------------------------- document ids over uuid keys
CREATE TABLE tb_user (pk_user uuid PRIMARY KEY, n int NOT NULL, name text NOT NULL);
INSERT INTO tb_user SELECT md5('user-' || i)::uuid, i, 'User ' || i FROM generate_series(1, 60) AS i;
CREATE VIEW v_user AS
SELECT pk_user AS id,
       jsonb_build_object('id', 'user-' || n, 'name', name, 'rank', n % 7,
                          'email', 'u' || n || '@example.org') AS data
FROM tb_user;

-- A shop's documents carry the same uuid as the view's id column.
CREATE VIEW v_shop AS
SELECT md5('shop-' || i)::uuid AS id,
       jsonb_build_object('id', md5('shop-' || i)::uuid, 'name', 'Shop ' || i) AS data
FROM generate_series(1, 5) AS i;

-- Documents without an id key: the id column is the id.
CREATE VIEW v_tag AS
SELECT i AS id, jsonb_build_object('label', 'tag ' || i) AS data FROM generate_series(1, 8) AS i;

-- Some documents carry an id that differs from the column, some carry none:
-- the column is the id of every row.
CREATE VIEW v_mixed AS
SELECT i AS id,
       CASE WHEN i % 5 = 0 THEN jsonb_build_object('name', 'x' || i)
            ELSE jsonb_build_object('id', 'm-' || i, 'name', 'x' || i) END AS data
FROM generate_series(1, 25) AS i;

-- A plural projection table beside a singular view: one entity, the tv_ serves.
CREATE TABLE tv_pens (id integer PRIMARY KEY, data jsonb NOT NULL);
INSERT INTO tv_pens VALUES (1, '{"id": 1, "ink": "blue"}'), (2, '{"id": 2, "ink": "red"}');
CREATE VIEW v_pen AS SELECT 1 AS id, '{"id": 1, "colour": "blue"}'::jsonb AS data;

-- ----------------------------------------- a tv_ projection not filled yet
CREATE TABLE tv_post (id integer PRIMARY KEY, data jsonb NOT NULL);
CREATE VIEW v_post AS
SELECT i AS id,
       jsonb_build_object(
           'id', i,
           'title', 'Post ' || i,
           'sponsor', CASE WHEN i % 3 = 0 THEN NULL
                           ELSE jsonb_build_object('name', 'Sponsor ' || (i % 4)) END,
           'owners', (SELECT jsonb_agg(jsonb_build_object('email', 'o' || ((i + k) % 5) || '@example.org',
                                                          'role', CASE WHEN k = 0 THEN 'lead' ELSE 'member' END)
                                       ORDER BY k)
                      FROM generate_series(0, i % 3) AS k),
           'tags', jsonb_build_array('t' || (i % 4))
       ) AS data
FROM generate_series(1, 40) AS i;

-- ---------------------------------- a plural view name, __typename in documents
CREATE VIEW v_authors AS
SELECT i AS id, jsonb_build_object('__typename', 'Author', 'id', i, 'name', 'Author ' || i) AS data
FROM generate_series(1, 6) AS i;

-- --------------------- real (float4) measures, timestamps without time zone
CREATE TABLE tf_events (
    id       bigint PRIMARY KEY,
    score    real NOT NULL,                 -- float4 arithmetic: the arrow plane declines it
    weight   double precision NOT NULL,
    at       timestamp NOT NULL,            -- no time zone
    flag     boolean,
    dimensions jsonb NOT NULL               -- its "flag" key clashes with the column
);
INSERT INTO tf_events
SELECT i, (i * 1.1)::real, i * 0.25, timestamp '2024-03-30 00:00:00' + i * interval '37 minutes',
       CASE WHEN i % 7 = 0 THEN NULL ELSE i % 2 = 0 END,
       jsonb_build_object('kind', (ARRAY['click', 'view'])[1 + i % 2], 'flag', 'x',
                          'seen_on', (date '2024-03-01' + i % 40)::text)
FROM generate_series(1, 500) AS i;

-- ------------------------------------- row-level security by a session setting
CREATE TABLE tb_invoice (id integer PRIMARY KEY, tenant_id integer NOT NULL, total numeric(10, 2) NOT NULL);
INSERT INTO tb_invoice SELECT i, 1 + i % 3, i * 1.25 FROM generate_series(1, 90) AS i;
ALTER TABLE tb_invoice ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tb_invoice
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::integer);
CREATE VIEW v_invoice WITH (security_invoker = true) AS
SELECT id, jsonb_build_object('id', id, 'tenant_id', tenant_id, 'total', total) AS data FROM tb_invoice;

CREATE TABLE tf_billing (id bigint PRIMARY KEY, tenant_id integer NOT NULL, amount float8 NOT NULL,
                         data jsonb NOT NULL);
INSERT INTO tf_billing
SELECT i, 1 + i % 3, i * 0.5, jsonb_build_object('plan', (ARRAY['free', 'pro'])[1 + i % 2])
FROM generate_series(1, 3000) AS i;
ALTER TABLE tf_billing ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tf_billing
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::integer);

ANALYZE;
