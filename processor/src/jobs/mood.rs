//! Per-user mood: each tweet scores +1 per happy word and -1 per sad one; a user's mood is kept across
//! batches with update_state_by_key, and the users a batch touched are emitted with their running mood.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::codec::{Json, Utf8};
use crate::error::JobConfigError;
use crate::jobs::hashtags::Tweet;
use crate::jobs::JobArgs;
use crate::runtime::JobFn;

const HAPPY: &[&str] = &["happy", "love", "great", "good", "fun", "yay", "awesome"];
const SAD: &[&str] = &["sad", "hate", "bad", "awful", "angry", "ugh", "terrible"];

pub fn score(text: &str) -> i64 {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .map(|w| i64::from(HAPPY.contains(&w.as_str())) - i64::from(SAD.contains(&w.as_str())))
        .sum()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mood {
    pub score: i64,
    pub tweets: u64,
    /// Whether the last batch changed it (only those are emitted).
    #[serde(skip)]
    pub touched: bool,
}

pub fn build(args: &JobArgs) -> Result<JobFn, JobConfigError> {
    let args = args.clone();
    Ok(Arc::new(move |ctx| {
        let tweets = ctx.topic::<String, Tweet>(&args.input, Utf8, Json);
        let scores = tweets.map(|r| (r.value.user.clone(), score(&r.value.text)));
        let by_user = ctx.repartition(&scores, "users", Utf8, Json);
        let moods = by_user.update_state_by_key(|scores: &[i64], old: Option<&Mood>| {
            let (score, tweets) = old.map_or((0, 0), |m| (m.score, m.tweets));
            Some(Mood {
                score: score + scores.iter().sum::<i64>(),
                tweets: tweets + scores.len() as u64,
                touched: !scores.is_empty(),
            })
        });
        let changed = moods.filter(|(_, m)| m.touched);
        ctx.to_topic(&changed, &args.output, Utf8, Json);
        Ok(())
    }))
}
