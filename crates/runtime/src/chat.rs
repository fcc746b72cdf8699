//! `POST /v1/chat/messages`: a message lands in its (agent, user, room,
//! channel) session and queues a run there; `/new` and `/resume [id]` are
//! answered at once.

use garrison_contracts::openclawssy::ChatMessageRequest;

use super::sessions::SessionKey;
use super::{Openclawssy, OpenclawssyError, StartRun, agent_paths};

/// What a chat message produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatReply {
    /// A run was queued in `session_id` (HTTP 202).
    Queued { run_id: String, session_id: String },
    /// A command was carried out (HTTP 200).
    Immediate {
        response: String,
        session_id: Option<String>,
    },
}

/// A command-style message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    New,
    Resume(Option<String>),
}

/// `/new` or `/resume [id]`; anything else is a message for the agent.
fn command(message: &str) -> Result<Option<Command>, OpenclawssyError> {
    let mut words = message.split_whitespace();
    let cmd = match words.next() {
        Some("/new") => Command::New,
        Some("/resume") => Command::Resume(words.next().map(str::to_string)),
        _ => return Ok(None),
    };
    if words.next().is_some() {
        let usage = match cmd {
            Command::New => "/new takes no arguments",
            Command::Resume(_) => "usage: /resume [session_id]",
        };
        return Err(OpenclawssyError::Invalid(usage.into()));
    }
    Ok(Some(cmd))
}

impl Openclawssy {
    /// Handles one chat message.
    pub async fn chat(&self, req: ChatMessageRequest) -> Result<ChatReply, OpenclawssyError> {
        req.validate()
            .map_err(|e| OpenclawssyError::Invalid(e.reason))?;
        agent_paths(&self.inner.data_dir, &req.agent_id)?;
        let sessions = &self.inner.sessions;
        let key = SessionKey::new(
            &req.agent_id,
            &req.user_id,
            req.room_id.as_deref(),
            req.channel.as_deref(),
        );
        match command(&req.message)? {
            Some(Command::New) => {
                let id = sessions.open_new(&key)?;
                Ok(ChatReply::Immediate {
                    response: format!("Started a new session ({id})."),
                    session_id: Some(id),
                })
            }
            Some(Command::Resume(id)) => match sessions.resume(&key, id.as_deref())? {
                Some(id) => {
                    let count = sessions.messages(&id)?.len();
                    Ok(ChatReply::Immediate {
                        response: format!("Resumed session {id} ({count} message(s))."),
                        session_id: Some(id),
                    })
                }
                None => Ok(ChatReply::Immediate {
                    response: "There is no earlier session to resume.".into(),
                    session_id: sessions.current(&key),
                }),
            },
            None => {
                let (session_id, _) = sessions.current_or_open(&key)?;
                let started = self
                    .start_run(StartRun {
                        agent_id: req.agent_id,
                        message: req.message,
                        source: "chat".into(),
                        session_id: Some(session_id.clone()),
                    })
                    .await?;
                Ok(ChatReply::Queued {
                    run_id: started.run_id,
                    session_id,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(command(" /new ").unwrap(), Some(Command::New));
        assert_eq!(command("/resume").unwrap(), Some(Command::Resume(None)));
        assert_eq!(
            command("/resume session_1").unwrap(),
            Some(Command::Resume(Some("session_1".into())))
        );
        assert_eq!(command("/newish").unwrap(), None);
        assert_eq!(command("tell me about /new").unwrap(), None);
        assert!(command("/new now").is_err());
        assert!(command("/resume a b").is_err());
    }
}
