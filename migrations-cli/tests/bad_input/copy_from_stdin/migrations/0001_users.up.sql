--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SET client_encoding = 'UTF8';

CREATE TABLE public.users (id integer, name text, note text);

COPY public.users (id, name, note) FROM stdin;
1	user1	O'Brien; -- x	\N
2	user2	D'Brien; -- x	\N
3	user3	O'Brien; -- x	\N
4	user4	D'Brien; -- x	\N
5	user5	O'Brien; -- x	\N
6	user6	D'Brien; -- x	\N
7	user7	O'Brien; -- x	\N
8	user8	D'Brien; -- x	\N
9	user9	O'Brien; -- x	\N
10	user10	D'Brien; -- x	\N
11	user11	O'Brien; -- x	\N
12	user12	D'Brien; -- x	\N
13	user13	O'Brien; -- x	\N
14	user14	D'Brien; -- x	\N
15	user15	O'Brien; -- x	\N
16	user16	D'Brien; -- x	\N
17	user17	O'Brien; -- x	\N
18	user18	D'Brien; -- x	\N
19	user19	O'Brien; -- x	\N
20	user20	D'Brien; -- x	\N
21	user21	O'Brien; -- x	\N
22	user22	D'Brien; -- x	\N
23	user23	O'Brien; -- x	\N
24	user24	D'Brien; -- x	\N
25	user25	O'Brien; -- x	\N
26	user26	D'Brien; -- x	\N
27	user27	O'Brien; -- x	\N
28	user28	D'Brien; -- x	\N
29	user29	O'Brien; -- x	\N
30	user30	D'Brien; -- x	\N
31	user31	O'Brien; -- x	\N
32	user32	D'Brien; -- x	\N
33	user33	O'Brien; -- x	\N
34	user34	D'Brien; -- x	\N
35	user35	O'Brien; -- x	\N
36	user36	D'Brien; -- x	\N
37	user37	O'Brien; -- x	\N
38	user38	D'Brien; -- x	\N
39	user39	O'Brien; -- x	\N
40	user40	D'Brien; -- x	\N
41	user41	O'Brien; -- x	\N
42	user42	D'Brien; -- x	\N
43	user43	O'Brien; -- x	\N
44	user44	D'Brien; -- x	\N
45	user45	O'Brien; -- x	\N
46	user46	D'Brien; -- x	\N
47	user47	O'Brien; -- x	\N
48	user48	D'Brien; -- x	\N
49	user49	O'Brien; -- x	\N
50	user50	D'Brien; -- x	\N
51	user51	O'Brien; -- x	\N
52	user52	D'Brien; -- x	\N
53	user53	O'Brien; -- x	\N
54	user54	D'Brien; -- x	\N
55	user55	O'Brien; -- x	\N
56	user56	D'Brien; -- x	\N
57	user57	O'Brien; -- x	\N
58	user58	D'Brien; -- x	\N
59	user59	O'Brien; -- x	\N
60	user60	D'Brien; -- x	\N
\.

CREATE INDEX users_name ON public.users (name);
