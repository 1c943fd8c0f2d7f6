-- The job store (hrlc.jobs.jobstore) as releases before versioned migrations created it at process start:
-- idempotent, so a database made by those releases upgrades in place.
create schema if not exists hrlc_jobs;
create table if not exists hrlc_jobs.jobs (
    id text primary key,
    user_id text not null,
    title text,
    description text,
    process jsonb not null,
    status text not null default 'created',
    progress double precision not null default 0,
    created timestamptz not null default now(),
    updated timestamptz not null default now(),
    queued timestamptz,
    started timestamptz,
    finished timestamptz,
    error text
);
create index if not exists jobs_user_created on hrlc_jobs.jobs (user_id, created desc);
create table if not exists hrlc_jobs.tasks (
    job_id text not null references hrlc_jobs.jobs (id) on delete cascade,
    id text not null,
    seq integer not null default 0,
    processor text not null,
    processor_version text not null,
    params jsonb not null,
    status text not null default 'created',
    progress double precision not null default 0,
    attempts integer not null default 0,
    depends_on text[] not null default '{}',
    outputs jsonb not null default '[]',
    worker text,
    message text,
    updated timestamptz not null default now(),
    primary key (job_id, id)
);
create table if not exists hrlc_jobs.logs (
    id bigserial primary key,
    job_id text not null references hrlc_jobs.jobs (id) on delete cascade,
    task_id text,
    time timestamptz not null default now(),
    level text not null,
    message text not null
);
create index if not exists logs_job on hrlc_jobs.logs (job_id, id);
create table if not exists hrlc_jobs.processors (
    name text not null,
    version text not null,
    entry_point text not null,
    image text,
    updated timestamptz not null default now(),
    primary key (name, version)
);
create table if not exists hrlc_jobs.workers (
    id text primary key,
    processor text not null,
    processor_version text not null,
    host text,
    pid integer,
    capacity integer not null default 1,
    started timestamptz not null default now(),
    heartbeat timestamptz not null default now()
);
alter table hrlc_jobs.jobs add column if not exists run integer not null default 0;
alter table hrlc_jobs.tasks add column if not exists run integer not null default 0;
