//! The add-on catalog: the services Slipway runs itself and their plans, with Heroku's names
//! and the limits Slipway enforces for each. Pure data and parsing, so the API, the core and
//! the CLI agree on what `heroku-postgresql:essential-1` means.
//!
//! What is enforced, and how:
//! - PostgreSQL: the connection limit is the role's `CONNECTION LIMIT` (the server refuses the
//!   next connection: "too many connections for role"). The storage figure is the plan's
//!   size limit: a periodic check (and one after each restore) compares `pg_database_size`
//!   with it and, past it, revokes the role's `INSERT`, `UPDATE` and `CREATE` as Heroku does
//!   for Essential plans, giving them back once it is under again (`postgres.rs`); `pg:info`
//!   shows the state. An operator may cap every plan lower (`--addon-postgres-max-mb`).
//! - Redis: the memory limit is the add-on's own server's `maxmemory` with `noeviction` (writes
//!   past it fail with Redis' OOM error), the connection limit its `maxclients`.

use std::fmt;

/// A service Slipway provisions itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Postgres,
    Redis,
}

impl Service {
    /// Every service, in catalog order.
    pub const ALL: [Service; 2] = [Service::Postgres, Service::Redis];

    /// Heroku's service name (`heroku-postgresql`, `heroku-redis`).
    pub fn name(self) -> &'static str {
        match self {
            Service::Postgres => "heroku-postgresql",
            Service::Redis => "heroku-redis",
        }
    }

    /// What the dashboard calls it.
    pub fn human_name(self) -> &'static str {
        match self {
            Service::Postgres => "Heroku Postgres",
            Service::Redis => "Heroku Key-Value Store",
        }
    }

    /// A stable id for the catalog (the schema wants UUIDs; these never change).
    pub fn id(self) -> &'static str {
        match self {
            Service::Postgres => "6c67493d-8fc2-4cd4-9161-4f1ec11cbe69",
            Service::Redis => "c8ab7316-1f1b-4a1b-b0b9-1ad0e0c0a6b5",
        }
    }

    /// The prefix of an add-on's generated name (`postgresql-shaped-12345`).
    pub fn name_prefix(self) -> &'static str {
        match self {
            Service::Postgres => "postgresql",
            Service::Redis => "redis",
        }
    }

    /// The plans, the default first.
    pub fn plans(self) -> &'static [Plan] {
        match self {
            Service::Postgres => POSTGRES_PLANS,
            Service::Redis => REDIS_PLANS,
        }
    }

    /// The plan used when none is named.
    pub fn default_plan(self) -> &'static Plan {
        &self.plans()[0]
    }

    /// A service by Heroku's name or its short alias (`postgresql`, `redis`).
    pub fn parse(name: &str) -> Option<Service> {
        match name {
            "heroku-postgresql" | "postgresql" | "postgres" => Some(Service::Postgres),
            "heroku-redis" | "redis" => Some(Service::Redis),
            _ => None,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One plan of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub service: Service,
    /// Heroku's plan name without the service (`essential-0`).
    pub name: &'static str,
    pub id: &'static str,
    /// Most connections at once.
    pub connections: u32,
    /// PostgreSQL: advertised storage; Redis: `maxmemory`.
    pub max_bytes: u64,
    /// Heroku's list price per month, for `billed_price`.
    pub price_cents: u32,
}

impl Plan {
    /// `heroku-postgresql:essential-0`.
    pub fn full_name(&self) -> String {
        format!("{}:{}", self.service.name(), self.name)
    }

    /// What Heroku shows as the plan's human name (`Essential 0`).
    pub fn human_name(&self) -> String {
        let mut out = String::new();
        for (i, word) in self.name.split('-').enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        }
        out
    }
}

const MB: u64 = 1024 * 1024;
const GB: u64 = 1024 * MB;

/// Heroku Postgres' Essential tier (connections and storage as Heroku advertises them).
static POSTGRES_PLANS: &[Plan] = &[
    Plan {
        service: Service::Postgres,
        name: "essential-0",
        id: "1b7f0a47-5c62-4d32-9c1b-1c8f4c1f0a10",
        connections: 20,
        max_bytes: GB,
        price_cents: 500,
    },
    Plan {
        service: Service::Postgres,
        name: "essential-1",
        id: "1b7f0a47-5c62-4d32-9c1b-1c8f4c1f0a11",
        connections: 20,
        max_bytes: 10 * GB,
        price_cents: 900,
    },
    Plan {
        service: Service::Postgres,
        name: "essential-2",
        id: "1b7f0a47-5c62-4d32-9c1b-1c8f4c1f0a12",
        connections: 40,
        max_bytes: 32 * GB,
        price_cents: 2000,
    },
];

/// Heroku Key-Value Store's small plans (memory and connections as Heroku advertises them).
static REDIS_PLANS: &[Plan] = &[
    Plan {
        service: Service::Redis,
        name: "mini",
        id: "5d2e9c0a-7a43-4b6f-8d3e-2f1a9b0c7e20",
        connections: 20,
        max_bytes: 25 * MB,
        price_cents: 300,
    },
    Plan {
        service: Service::Redis,
        name: "premium-0",
        id: "5d2e9c0a-7a43-4b6f-8d3e-2f1a9b0c7e21",
        connections: 40,
        max_bytes: 50 * MB,
        price_cents: 1500,
    },
    Plan {
        service: Service::Redis,
        name: "premium-1",
        id: "5d2e9c0a-7a43-4b6f-8d3e-2f1a9b0c7e22",
        connections: 80,
        max_bytes: 100 * MB,
        price_cents: 3000,
    },
];

/// Why `SERVICE[:PLAN]` names nothing in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("Couldn't find either the add-on service or the add-on plan of \"{0}\". Available services: heroku-postgresql, heroku-redis.")]
    UnknownService(String),
    #[error("Couldn't find the plan \"{plan}\" of {service}. Available plans: {available}.")]
    UnknownPlan {
        service: Service,
        plan: String,
        available: String,
    },
}

/// Parses `service[:plan]` (`heroku-postgresql`, `postgresql:essential-1`, `heroku-redis:mini`).
pub fn parse_plan(spec: &str) -> Result<&'static Plan, PlanError> {
    let spec = spec.trim();
    let (service_name, plan_name) = match spec.split_once(':') {
        Some((s, p)) => (s, Some(p)),
        None => (spec, None),
    };
    let service =
        Service::parse(service_name).ok_or_else(|| PlanError::UnknownService(spec.to_owned()))?;
    match plan_name {
        None => Ok(service.default_plan()),
        Some(plan) => service
            .plans()
            .iter()
            .find(|p| p.name == plan)
            .ok_or_else(|| PlanError::UnknownPlan {
                service,
                plan: plan.to_owned(),
                available: service
                    .plans()
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
    }
}

#[cfg(test)]
mod tests;
