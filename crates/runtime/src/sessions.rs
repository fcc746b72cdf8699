//! Chat sessions: append-only JSON lines per agent under
//! `<data-dir>/agents/<agent_id>/sessions/`.
//!
//! `index.jsonl` records every session opened (with its user, room and
//! channel) and every `/resume`; the last such line for a key names the
//! key's current session. `<session_id>.jsonl` holds the session's messages
//! in order, each with its `seq` and time. Nothing is ever rewritten, so a
//! restart rebuilds the same state from the files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use garrison_agent::SessionMessage;
use serde::{Deserialize, Serialize};

use super::error::OpenclawssyError;
use super::now;

/// (agent, user, room, channel): one conversation place.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub agent_id: String,
    pub user_id: String,
    pub room_id: Option<String>,
    pub channel: Option<String>,
}

impl SessionKey {
    /// Blank room and channel count as absent.
    pub fn new(
        agent_id: &str,
        user_id: &str,
        room_id: Option<&str>,
        channel: Option<&str>,
    ) -> SessionKey {
        let opt = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(String::from);
        SessionKey {
            agent_id: agent_id.to_string(),
            user_id: user_id.trim().to_string(),
            room_id: opt(room_id),
            channel: opt(channel),
        }
    }
}

/// One line of `index.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum IndexEntry {
    Opened {
        session_id: String,
        user_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        ts: String,
    },
    Resumed {
        session_id: String,
        ts: String,
    },
}

/// One persisted message: its place, its time, and the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredMessage {
    pub seq: u64,
    pub ts: String,
    #[serde(flatten)]
    pub message: SessionMessage,
}

/// A session as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    pub session_id: String,
    pub agent_id: String,
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub message_count: u64,
    /// Whether new messages for its key go to this session.
    pub current: bool,
}

/// Filter of `GET /api/admin/chat/sessions`; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
pub struct SessionFilter {
    /// Only this agent's sessions.
    pub agent_id: Option<String>,
    /// Only this user's sessions.
    pub user_id: Option<String>,
    /// Only sessions in this room.
    pub room_id: Option<String>,
    /// Only sessions on this channel (`web`, `slack`, …).
    pub channel: Option<String>,
}

struct Session {
    key: SessionKey,
    created_at: String,
    updated_at: String,
    next_seq: u64,
    /// Held by the run that is answering in this session, so runs of one
    /// session take turns and their messages never interleave.
    turn: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct Index {
    sessions: HashMap<String, Session>,
    current: HashMap<SessionKey, String>,
}

/// Every agent's sessions, indexed in memory, written through.
pub struct SessionStore {
    agents_dir: PathBuf,
    index: Mutex<Index>,
}

fn valid_session_id(id: &str) -> bool {
    id.strip_prefix("session_").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

impl SessionStore {
    /// Rebuilds the index from every agent's session files.
    pub fn open(data_dir: &Path) -> Result<SessionStore, OpenclawssyError> {
        let agents_dir = data_dir.join("agents");
        let mut index = Index::default();
        let agents = match std::fs::read_dir(&agents_dir) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .collect::<Vec<_>>(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(OpenclawssyError::io(&agents_dir, e)),
        };
        for agent in agents {
            let agent_id = agent.file_name().to_string_lossy().into_owned();
            if !garrison_agent::audit::valid_agent_id(&agent_id) {
                continue;
            }
            let dir = agent.path().join("sessions");
            let path = dir.join("index.jsonl");
            let entries: Vec<IndexEntry> =
                garrison_files::read_lines(&path).map_err(|e| OpenclawssyError::io(&path, e))?;
            for entry in entries {
                index.replay(&dir, &agent_id, entry)?;
            }
        }
        Ok(SessionStore {
            agents_dir,
            index: Mutex::new(index),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn dir(&self, agent_id: &str) -> PathBuf {
        self.agents_dir.join(agent_id).join("sessions")
    }

    fn record(&self, agent_id: &str, entry: &IndexEntry) -> Result<(), OpenclawssyError> {
        let path = self.dir(agent_id).join("index.jsonl");
        garrison_files::append_line(&path, entry).map_err(|e| OpenclawssyError::io(&path, e))
    }

    /// The key's current session, opening one when it has none. Returns the
    /// id and whether it was opened now.
    pub fn current_or_open(&self, key: &SessionKey) -> Result<(String, bool), OpenclawssyError> {
        let mut index = self.lock();
        if let Some(id) = index.current.get(key) {
            return Ok((id.clone(), false));
        }
        let id = self.open_locked(&mut index, key)?;
        Ok((id, true))
    }

    /// The key's current session, if it has one.
    pub fn current(&self, key: &SessionKey) -> Option<String> {
        self.lock().current.get(key).cloned()
    }

    /// Starts a new session for `key`; it becomes the current one.
    pub fn open_new(&self, key: &SessionKey) -> Result<String, OpenclawssyError> {
        let mut index = self.lock();
        self.open_locked(&mut index, key)
    }

    fn open_locked(&self, index: &mut Index, key: &SessionKey) -> Result<String, OpenclawssyError> {
        let session_id = format!("session_{}", ulid::Ulid::new().to_string().to_lowercase());
        let entry = IndexEntry::Opened {
            session_id: session_id.clone(),
            user_id: key.user_id.clone(),
            room_id: key.room_id.clone(),
            channel: key.channel.clone(),
            ts: now(),
        };
        self.record(&key.agent_id, &entry)?;
        index.replay(&self.dir(&key.agent_id), &key.agent_id, entry)?;
        Ok(session_id)
    }

    /// Makes `session_id` (or, when `None`, the most recently active other
    /// session of `key`) the key's current session. `Ok(None)`: there is no
    /// other session to go back to. A session of another key is not found.
    pub fn resume(
        &self,
        key: &SessionKey,
        session_id: Option<&str>,
    ) -> Result<Option<String>, OpenclawssyError> {
        let mut index = self.lock();
        let target = match session_id {
            Some(id) => match index.sessions.get(id) {
                Some(s) if &s.key == key => id.to_string(),
                _ => {
                    return Err(OpenclawssyError::NotFound(format!(
                        "no session `{id}` for this user, room and channel"
                    )));
                }
            },
            None => {
                let current = index.current.get(key);
                let other = index
                    .sessions
                    .iter()
                    .filter(|(id, s)| &s.key == key && Some(*id) != current)
                    .max_by(|a, b| (&a.1.updated_at, a.0).cmp(&(&b.1.updated_at, b.0)))
                    .map(|(id, _)| id.clone());
                match other {
                    Some(id) => id,
                    None => return Ok(None),
                }
            }
        };
        let entry = IndexEntry::Resumed {
            session_id: target.clone(),
            ts: now(),
        };
        self.record(&key.agent_id, &entry)?;
        index.replay(&self.dir(&key.agent_id), &key.agent_id, entry)?;
        Ok(Some(target))
    }

    /// The agent a session belongs to.
    pub fn agent_of(&self, session_id: &str) -> Option<String> {
        self.lock()
            .sessions
            .get(session_id)
            .map(|s| s.key.agent_id.clone())
    }

    /// The lock a run holds while it answers in `session_id`.
    pub fn turn(&self, session_id: &str) -> Result<Arc<tokio::sync::Mutex<()>>, OpenclawssyError> {
        self.lock()
            .sessions
            .get(session_id)
            .map(|s| s.turn.clone())
            .ok_or_else(|| not_found(session_id))
    }

    /// Appends `messages` to the session, in order.
    pub fn append(
        &self,
        session_id: &str,
        messages: Vec<SessionMessage>,
    ) -> Result<(), OpenclawssyError> {
        let mut index = self.lock();
        let dir = self.agents_dir.clone();
        let session = index
            .sessions
            .get_mut(session_id)
            .ok_or_else(|| not_found(session_id))?;
        let path = dir
            .join(&session.key.agent_id)
            .join("sessions")
            .join(format!("{session_id}.jsonl"));
        for message in messages {
            let stored = StoredMessage {
                seq: session.next_seq,
                ts: now(),
                message,
            };
            garrison_files::append_line(&path, &stored)
                .map_err(|e| OpenclawssyError::io(&path, e))?;
            session.next_seq += 1;
            session.updated_at = stored.ts;
        }
        Ok(())
    }

    /// The session's messages, oldest first.
    pub fn messages(&self, session_id: &str) -> Result<Vec<StoredMessage>, OpenclawssyError> {
        let path = {
            let index = self.lock();
            let session = index
                .sessions
                .get(session_id)
                .ok_or_else(|| not_found(session_id))?;
            self.dir(&session.key.agent_id)
                .join(format!("{session_id}.jsonl"))
        };
        garrison_files::read_lines(&path).map_err(|e| OpenclawssyError::io(&path, e))
    }

    /// Sessions matching `filter`, most recently active first.
    pub fn list(&self, filter: &SessionFilter) -> Result<Vec<SessionInfo>, OpenclawssyError> {
        let index = self.lock();
        // A blank filter value (`?room_id=`) matches anything, like an absent one.
        let matches = |want: &Option<String>, have: Option<&str>| {
            want.as_deref()
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .is_none_or(|w| have.unwrap_or("") == w)
        };
        let mut out: Vec<SessionInfo> = index
            .sessions
            .iter()
            .filter(|(_, s)| {
                matches(&filter.agent_id, Some(&s.key.agent_id))
                    && matches(&filter.user_id, Some(&s.key.user_id))
                    && matches(&filter.room_id, s.key.room_id.as_deref())
                    && matches(&filter.channel, s.key.channel.as_deref())
            })
            .map(|(id, s)| SessionInfo {
                session_id: id.clone(),
                agent_id: s.key.agent_id.clone(),
                user_id: s.key.user_id.clone(),
                room_id: s.key.room_id.clone(),
                channel: s.key.channel.clone(),
                created_at: s.created_at.clone(),
                updated_at: s.updated_at.clone(),
                message_count: s.next_seq - 1,
                current: index.current.get(&s.key) == Some(id),
            })
            .collect();
        out.sort_by(|a, b| (&b.updated_at, &b.session_id).cmp(&(&a.updated_at, &a.session_id)));
        Ok(out)
    }
}

fn not_found(session_id: &str) -> OpenclawssyError {
    OpenclawssyError::NotFound(format!("no session `{session_id}`"))
}

impl Index {
    /// Applies one index line (from the file at open, or just written).
    fn replay(
        &mut self,
        dir: &Path,
        agent_id: &str,
        entry: IndexEntry,
    ) -> Result<(), OpenclawssyError> {
        match entry {
            IndexEntry::Opened {
                session_id,
                user_id,
                room_id,
                channel,
                ts,
            } => {
                if !valid_session_id(&session_id) || self.sessions.contains_key(&session_id) {
                    tracing::warn!(session = %session_id, "ignoring an invalid or repeated session in the index");
                    return Ok(());
                }
                let key =
                    SessionKey::new(agent_id, &user_id, room_id.as_deref(), channel.as_deref());
                let path = dir.join(format!("{session_id}.jsonl"));
                let messages: Vec<StoredMessage> = garrison_files::read_lines(&path)
                    .map_err(|e| OpenclawssyError::io(&path, e))?;
                let next_seq = messages.last().map_or(1, |m| m.seq + 1);
                let updated_at = messages.last().map_or_else(|| ts.clone(), |m| m.ts.clone());
                self.current.insert(key.clone(), session_id.clone());
                self.sessions.insert(
                    session_id,
                    Session {
                        key,
                        created_at: ts,
                        updated_at,
                        next_seq,
                        turn: Arc::default(),
                    },
                );
            }
            IndexEntry::Resumed { session_id, ts } => {
                let Some(session) = self.sessions.get_mut(&session_id) else {
                    tracing::warn!(session = %session_id, "ignoring a resume of an unknown session");
                    return Ok(());
                };
                if session.updated_at < ts {
                    session.updated_at = ts;
                }
                self.current.insert(session.key.clone(), session_id);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use garrison_agent::SessionRole;

    fn user(text: &str) -> SessionMessage {
        SessionMessage {
            content: text.into(),
            ..SessionMessage::default()
        }
    }

    #[test]
    fn keys_sessions_resumes_and_rebuilds() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::open(dir.path()).unwrap();
        let key = SessionKey::new("agent_default", "u1", Some("room"), Some(" "));
        assert_eq!(key.channel, None);
        let other = SessionKey::new("agent_default", "u2", Some("room"), None);

        let (a, opened) = store.current_or_open(&key).unwrap();
        assert!(opened);
        assert_eq!(store.current_or_open(&key).unwrap(), (a.clone(), false));
        store.append(&a, vec![user("one"), user("two")]).unwrap();
        let b = store.open_new(&key).unwrap();
        assert_ne!(a, b);
        assert_eq!(store.current_or_open(&key).unwrap().0, b);
        let (c, _) = store.current_or_open(&other).unwrap();
        assert!(matches!(
            store.resume(&key, Some(&c)),
            Err(OpenclawssyError::NotFound(_))
        ));
        assert!(matches!(
            store.resume(&key, Some("session_nope")),
            Err(OpenclawssyError::NotFound(_))
        ));
        // Without an id: back to the other session of the key.
        assert_eq!(store.resume(&key, None).unwrap(), Some(a.clone()));
        assert_eq!(store.resume(&other, None).unwrap(), None);
        store
            .append(
                &a,
                vec![SessionMessage {
                    role: SessionRole::Assistant,
                    content: "three".into(),
                    ..SessionMessage::default()
                }],
            )
            .unwrap();

        let reopened = SessionStore::open(dir.path()).unwrap();
        assert_eq!(reopened.current_or_open(&key).unwrap(), (a.clone(), false));
        let msgs = reopened.messages(&a).unwrap();
        let seqs: Vec<u64> = msgs.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(msgs[2].message.role, SessionRole::Assistant);
        let listed = reopened
            .list(&SessionFilter {
                user_id: Some("u1".into()),
                ..SessionFilter::default()
            })
            .unwrap();
        assert_eq!(listed.len(), 2);
        let info_a = listed.iter().find(|s| s.session_id == a).unwrap();
        assert!(info_a.current);
        assert_eq!(info_a.message_count, 3);
        assert_eq!(info_a.room_id.as_deref(), Some("room"));
        reopened.append(&a, vec![user("four")]).unwrap();
        assert_eq!(reopened.messages(&a).unwrap().last().unwrap().seq, 4);
        assert!(
            reopened
                .list(&SessionFilter {
                    channel: Some("web".into()),
                    ..SessionFilter::default()
                })
                .unwrap()
                .is_empty()
        );
        assert_eq!(reopened.agent_of(&c).as_deref(), Some("agent_default"));
    }
}
