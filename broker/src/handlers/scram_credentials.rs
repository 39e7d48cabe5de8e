//! DescribeUserScramCredentials / AlterUserScramCredentials (KIP-554): what `kafka-configs.sh --entity-type
//! users` and the AdminClient use. Alter receives the salted password, never the password itself; the
//! store keeps StoredKey / ServerKey derived from it. Kafka's checks and codes: DESCRIBE / ALTER on the
//! cluster, iteration bounds, one change per user and mechanism, deleting what does not exist.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::Operation;
use crate::security::sasl::{ScramCredential, ScramMechanism};

/// Kafka's bounds on SCRAM iterations.
const MAX_ITERATIONS: i32 = 16384;

pub async fn describe(
    broker: &Broker,
    req: DescribeUserScramCredentialsRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<DescribeUserScramCredentialsResponse> {
    if !ctx.allowed_on_cluster(broker, Operation::Describe) {
        return Some(
            DescribeUserScramCredentialsResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                .with_error_message(Some(str_bytes("Cluster authorization failed."))),
        );
    }
    let all: BTreeMap<String, Vec<(ScramMechanism, u32)>> =
        broker.credentials.list().into_iter().collect();
    let info = |mechs: &[(ScramMechanism, u32)]| {
        mechs
            .iter()
            .map(|(m, i)| {
                CredentialInfo::default()
                    .with_mechanism(m.code())
                    .with_iterations(*i as i32)
            })
            .collect::<Vec<_>>()
    };
    let results = match req.users.as_deref() {
        None | Some([]) => all
            .iter()
            .map(|(user, mechs)| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(str_bytes(user))
                    .with_credential_infos(info(mechs))
            })
            .collect(),
        Some(users) => {
            let mut seen = HashSet::new();
            let duplicated: HashSet<String> = users
                .iter()
                .filter(|u| !seen.insert(u.name.to_string()))
                .map(|u| u.name.to_string())
                .collect();
            let mut listed = HashSet::new();
            users
                .iter()
                .filter(|u| listed.insert(u.name.to_string()))
                .map(|u| {
                    let name = u.name.to_string();
                    let r = DescribeUserScramCredentialsResult::default().with_user(str_bytes(&name));
                    if duplicated.contains(&name) {
                        return r
                            .with_error_code(ResponseError::DuplicateResource.code())
                            .with_error_message(Some(str_bytes("Cannot describe SCRAM credentials for the same user twice in a single request")));
                    }
                    match all.get(&name) {
                        Some(mechs) => r.with_credential_infos(info(mechs)),
                        None => r
                            .with_error_code(ResponseError::ResourceNotFound.code())
                            .with_error_message(Some(str_bytes(&format!(
                                "Attempt to describe a user credential that does not exist: {name}"
                            )))),
                    }
                })
                .collect()
        }
    };
    Some(DescribeUserScramCredentialsResponse::default().with_results(results))
}

pub async fn alter(
    broker: &Broker,
    req: AlterUserScramCredentialsRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<AlterUserScramCredentialsResponse> {
    let mut users: Vec<String> = req
        .deletions
        .iter()
        .map(|d| d.name.to_string())
        .chain(req.upsertions.iter().map(|u| u.name.to_string()))
        .collect();
    users.dedup();
    let mut errors: BTreeMap<String, (i16, String)> = BTreeMap::new();
    if !ctx.allowed_on_cluster(broker, Operation::Alter) {
        let results = unique(users)
            .into_iter()
            .map(|u| {
                AlterUserScramCredentialsResult::default()
                    .with_user(str_bytes(&u))
                    .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                    .with_error_message(Some(str_bytes("Cluster authorization failed.")))
            })
            .collect();
        return Some(AlterUserScramCredentialsResponse::default().with_results(results));
    }
    let mut fail = |user: &str, code: ResponseError, msg: &str| {
        errors
            .entry(user.to_string())
            .or_insert((code.code(), msg.to_string()));
    };
    // What Kafka refuses in deletions and upsertions alike: an unknown mechanism, the same credential twice,
    // an empty name.
    let mut seen = HashSet::new();
    let mut checked =
        |user: &str, mechanism: i8| -> Result<ScramMechanism, (ResponseError, &'static str)> {
            let m = ScramMechanism::from_code(mechanism).ok_or((
                ResponseError::UnsupportedSaslMechanism,
                "Unknown SCRAM mechanism",
            ))?;
            if !seen.insert((user.to_string(), m.code())) {
                return Err((
                    ResponseError::DuplicateResource,
                    "A user credential cannot be altered twice in the same request",
                ));
            }
            if user.is_empty() {
                return Err((
                    ResponseError::UnacceptableCredential,
                    "Username must not be empty",
                ));
            }
            Ok(m)
        };
    let mut changes = Vec::new();
    for d in &req.deletions {
        let user = d.name.to_string();
        match checked(&user, d.mechanism) {
            Err((code, msg)) => fail(&user, code, msg),
            Ok(m) if broker.credentials.get(&user, m).is_none() => fail(
                &user,
                ResponseError::ResourceNotFound,
                "Attempt to delete a user credential that does not exist",
            ),
            Ok(m) => changes.push((user, m, None)),
        }
    }
    for u in &req.upsertions {
        let user = u.name.to_string();
        match checked(&user, u.mechanism) {
            Err((code, msg)) => fail(&user, code, msg),
            Ok(m) if u.iterations < m.min_iterations() as i32 => fail(
                &user,
                ResponseError::UnacceptableCredential,
                "Too few iterations",
            ),
            Ok(_) if u.iterations > MAX_ITERATIONS => fail(
                &user,
                ResponseError::UnacceptableCredential,
                "Too many iterations",
            ),
            Ok(_) if u.salt.is_empty() || u.salted_password.is_empty() => fail(
                &user,
                ResponseError::UnacceptableCredential,
                "Credential must have a salt and a salted password",
            ),
            Ok(m) => {
                let cred = ScramCredential::from_salted_password(
                    m,
                    &u.salted_password,
                    u.salt.to_vec(),
                    u.iterations as u32,
                );
                changes.push((user, m, Some(cred)));
            }
        }
    }
    // A user with any bad change gets nothing applied, as Kafka validates per user before writing.
    changes.retain(|(user, _, _)| !errors.contains_key(user));
    let changed_users: Vec<String> = changes.iter().map(|(u, _, _)| u.clone()).collect();
    if let Err(e) = broker
        .change_shared(&broker.credentials, || broker.credentials.apply(changes))
        .await
    {
        tracing::error!(error = %e, "cannot store SCRAM credentials");
        for u in changed_users {
            errors.insert(u, (ResponseError::UnknownServerError.code(), e.to_string()));
        }
    }
    let results = unique(users)
        .into_iter()
        .map(|user| {
            let r = AlterUserScramCredentialsResult::default().with_user(str_bytes(&user));
            match errors.get(&user) {
                Some((code, msg)) => r
                    .with_error_code(*code)
                    .with_error_message(Some(str_bytes(msg))),
                None => r,
            }
        })
        .collect();
    Some(AlterUserScramCredentialsResponse::default().with_results(results))
}

fn unique(users: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    users
        .into_iter()
        .filter(|u| seen.insert(u.clone()))
        .collect()
}
