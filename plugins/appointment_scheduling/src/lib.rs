//! `appointment_scheduling`: patient and appointment details from a booking call.
//!
//! Fills the product's webhook fields: `answered_by`, `insurance_type` and a
//! `data[]` item with `patient{name, phone, email, date_of_birth,
//! additional_spellings}`, `appointment{patient_type, visit_reason, ...}` and
//! `insurance{...}`. Patient details are read from the caller's answers to the
//! agent's questions; the appointment slot from the agent's confirmation.

mod extract;

use gensail_host_api::{Algorithm, AlgorithmError, Metadata, Segment, Transcript, register_algorithm};
use gensail_text::mentions_any;
use serde::{Deserialize, Serialize};

/// Phrases by which the office confirms a slot.
const CONFIRMATIONS: &[&str] = &[
    "you're all set",
    "all set for",
    "i have you down",
    "i've booked",
    "booked you",
    "i've scheduled",
    "scheduled you",
    "i've rescheduled",
    "rescheduled your",
    "i've moved",
    "see you on",
    "see you then",
    "you're confirmed",
    "is confirmed",
];
const NEW_PATIENT: &[&str] = &[
    "new patient",
    "never been",
    "first time",
    "first visit",
    "just moved",
    "haven't been",
    "new patients",
];
const EXISTING_PATIENT: &[&str] = &[
    "existing patient",
    "my appointment",
    "i have an appointment",
    "your last cleaning",
    "my last cleaning",
    "good to hear from you",
    "due for my",
    "i see your",
    "been here before",
    "your records",
];
/// (phrase, the reason reported).
const REASONS: &[(&str, &str)] = &[
    ("cleaning", "cleaning"),
    ("checkup", "checkup"),
    ("check-up", "checkup"),
    ("exam", "exam"),
    ("toothache", "tooth pain"),
    ("tooth pain", "tooth pain"),
    ("hurting", "tooth pain"),
    ("throbbing", "tooth pain"),
    ("chipped", "chipped tooth"),
    ("broken tooth", "broken tooth"),
    ("filling", "filling"),
    ("crown", "crown"),
    ("root canal", "root canal"),
    ("extraction", "extraction"),
    ("wisdom tooth", "wisdom tooth"),
    ("whitening", "whitening"),
    ("implant", "implant"),
    ("emergency", "emergency"),
    ("consultation", "consultation"),
    ("braces", "orthodontics"),
    ("invisalign", "orthodontics"),
    ("bleeding gums", "gum problem"),
    ("dentures", "dentures"),
];
const CARRIERS: &[&str] = &[
    "Delta Dental",
    "Cigna",
    "Aetna",
    "MetLife",
    "Guardian",
    "UnitedHealthcare",
    "United Healthcare",
    "Humana",
    "Blue Cross",
    "Blue Shield",
    "BCBS",
    "Anthem",
    "Medicaid",
    "Medicare",
    "Ameritas",
    "Principal",
    "Humana",
];
const SELF_PAY: &[&str] = &[
    "don't have insurance",
    "no insurance",
    "self pay",
    "self-pay",
    "without insurance",
    "not insured",
];

/// Config.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Label of the office's speaker; default: detected.
    pub agent_speaker: Option<String>,
    /// Extra insurance carriers to recognise besides the built-in list.
    pub insurance_carriers: Vec<String>,
}

/// Who the patient is.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Patient {
    /// Full name.
    pub name: Option<String>,
    /// `555-234-8812`.
    pub phone: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
    /// Words the caller spelled out letter by letter (e.g. a surname), as spelled.
    pub additional_spellings: Vec<String>,
}

/// What the appointment is.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Appointment {
    /// `New Patient` or `Existing Patient`.
    pub patient_type: Option<&'static str>,
    /// The reasons, comma separated, in the order mentioned.
    pub visit_reason: Option<String>,
    /// The reasons as a list.
    pub visit_reasons: Vec<&'static str>,
    /// The day as said ("Tuesday", "next Thursday", "today").
    pub requested_date: Option<String>,
    /// `10:30 AM`.
    pub requested_time: Option<String>,
    /// Whether the office confirmed a slot.
    pub booked: bool,
    /// "Dr. Patel", when named in the confirmation.
    pub provider: Option<String>,
}

/// Insurance as discussed.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Insurance {
    /// Whether insurance came up at all.
    pub mentioned: bool,
    /// Carriers named, in order.
    pub carriers: Vec<String>,
    /// Whether the caller is paying without insurance.
    pub self_pay: bool,
}

/// One extracted appointment request.
#[derive(Debug, Serialize)]
pub struct Item {
    /// The patient.
    pub patient: Patient,
    /// The appointment.
    pub appointment: Appointment,
    /// Insurance.
    pub insurance: Insurance,
}

/// The output.
#[derive(Debug, Serialize)]
pub struct Output {
    /// The office's person who answered ("Sofia").
    pub answered_by: Option<String>,
    /// The carrier the patient uses now, or "Self Pay".
    pub insurance_type: Option<String>,
    /// The appointment request (one per call).
    pub data: Vec<Item>,
}

/// The caller's reply to the first agent segment that asks about one of `topics`.
fn answer_to<'a>(segments: &'a [Segment], agent: &str, topics: &[&str]) -> Option<&'a Segment> {
    let asked = segments
        .iter()
        .position(|s| s.speaker == agent && mentions_any(&s.text, topics))?;
    segments[asked + 1..].iter().find(|s| s.speaker != agent)
}

/// Extracts the details (the whole logic, callable natively).
pub fn analyse(transcript: &Transcript, config: &Config) -> Output {
    let segments = &transcript.segments;
    let agent = gensail_text::roles::agent_speaker(transcript, config.agent_speaker.as_deref()).unwrap_or_default();
    let caller: Vec<&Segment> = segments.iter().filter(|s| s.speaker != agent).collect();
    let all_text: Vec<&str> = segments.iter().map(|s| s.text.as_str()).collect();

    let mut patient = Patient::default();
    let name_reply = answer_to(
        segments,
        &agent,
        &[
            "your name",
            "first and last name",
            "who am i speaking",
            "name and date of birth",
        ],
    );
    patient.name = name_reply
        .and_then(|s| {
            ["my name is", "it's", "this is", "i'm"]
                .iter()
                .find_map(|cue| extract::name_after(&s.text, cue))
                .or_else(|| extract::name_after(&s.text, ""))
        })
        .or_else(|| {
            caller.iter().take(3).find_map(|s| {
                ["my name is", "this is", "it's"]
                    .iter()
                    .find_map(|cue| extract::name_after(&s.text, cue))
            })
        });
    patient.phone = caller.iter().find_map(|s| extract::phone(&s.text));
    patient.email = caller.iter().find_map(|s| extract::email(&s.text));
    patient.date_of_birth = answer_to(segments, &agent, &["date of birth", "birthday", "dob", "birth date"])
        .and_then(|s| extract::date(&s.text))
        .or_else(|| {
            caller
                .iter()
                .filter(|s| mentions_any(&s.text, &["date of birth", "born", "birthday"]))
                .find_map(|s| extract::date(&s.text))
        });
    patient.additional_spellings = caller.iter().flat_map(|s| extract::spelled_words(&s.text)).collect();

    let mut appointment = Appointment::default();
    let (new, existing) = (
        all_text.iter().any(|t| mentions_any(t, NEW_PATIENT)),
        all_text.iter().any(|t| mentions_any(t, EXISTING_PATIENT)),
    );
    appointment.patient_type = match (new, existing) {
        (true, _) => Some("New Patient"),
        (false, true) => Some("Existing Patient"),
        _ => None,
    };
    for (phrase, reason) in REASONS {
        let first = caller.iter().position(|s| mentions_any(&s.text, &[phrase]));
        if first.is_some() && !appointment.visit_reasons.contains(reason) {
            appointment.visit_reasons.push(reason);
        }
    }
    if !appointment.visit_reasons.is_empty() {
        appointment.visit_reason = Some(appointment.visit_reasons.join(", "));
    }
    let confirmation = segments
        .iter()
        .rev()
        .find(|s| s.speaker == agent && mentions_any(&s.text, CONFIRMATIONS) && extract::time(&s.text).is_some());
    appointment.booked = confirmation.is_some();
    // Without a confirmation, the last slot anyone named is what was requested.
    let slot = confirmation.or_else(|| segments.iter().rev().find(|s| extract::time(&s.text).is_some()));
    if let Some(s) = slot {
        appointment.requested_time = extract::time(&s.text);
        appointment.requested_date = extract::day(&s.text);
        appointment.provider = extract::name_after(&s.text, "dr. ").map(|n| format!("Dr. {n}"));
    }

    let mut insurance = Insurance::default();
    let carriers: Vec<String> = CARRIERS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(config.insurance_carriers.iter().cloned())
        .collect();
    for s in segments {
        for c in &carriers {
            if mentions_any(&s.text, &[c]) && !insurance.carriers.contains(c) {
                insurance.carriers.push(c.clone());
            }
        }
    }
    insurance.self_pay = caller.iter().any(|s| mentions_any(&s.text, SELF_PAY));
    insurance.mentioned = insurance.self_pay
        || !insurance.carriers.is_empty()
        || all_text.iter().any(|t| mentions_any(t, &["insurance"]));
    // The carrier the caller names last is the current one ("on Aetna now instead of MetLife").
    let current = caller
        .iter()
        .rev()
        .find_map(|s| {
            let mut named: Vec<(usize, &String)> = carriers
                .iter()
                .filter_map(|c| gensail_text::find_phrase(&s.text, c).first().map(|(at, _)| (*at, c)))
                .collect();
            named.sort();
            let now = s.text.to_lowercase().contains("instead of");
            if now {
                named.first().map(|(_, c)| (*c).clone())
            } else {
                named.last().map(|(_, c)| (*c).clone())
            }
        })
        .or_else(|| insurance.carriers.first().cloned());
    let insurance_type = if insurance.self_pay {
        Some("Self Pay".to_owned())
    } else {
        current
    };

    let answered_by = segments
        .iter()
        .filter(|s| s.speaker == agent)
        .take(2)
        .find_map(|s| {
            ["this is", "my name is", "i'm"]
                .iter()
                .find_map(|cue| extract::name_after(&s.text, cue))
        })
        .map(|n| n.split_whitespace().next().unwrap_or_default().to_owned());

    Output {
        answered_by,
        insurance_type,
        data: vec![Item {
            patient,
            appointment,
            insurance,
        }],
    }
}

/// The algorithm.
pub struct AppointmentScheduling;

impl Algorithm for AppointmentScheduling {
    type Config = Config;
    type Output = Output;

    fn metadata() -> Metadata {
        Metadata::new(
            "appointment_scheduling",
            env!("CARGO_PKG_VERSION"),
            "Patient name, phone, e-mail, date of birth, patient type, visit reason, requested slot and insurance from a dental booking call.",
        )
        .with_config_schema(serde_json::json!({
            "type": "object",
            "properties": {
                "agent_speaker": {"type": "string"},
                "insurance_carriers": {"type": "array", "items": {"type": "string"}}
            },
            "additionalProperties": false
        }))
    }

    fn run(transcript: &Transcript, config: Config) -> Result<Output, AlgorithmError> {
        transcript.require_speech()?;
        Ok(analyse(transcript, &config))
    }
}

register_algorithm!(AppointmentScheduling);

#[cfg(test)]
mod tests {
    use super::*;
    use gensail_text::fixtures;

    fn run(name: &str) -> Output {
        analyse(&fixtures::load(name), &Config::default())
    }

    #[test]
    fn new_patient_booking() {
        let out = run("dental_booking.txt");
        assert_eq!(out.answered_by.as_deref(), Some("Sofia"));
        assert_eq!(out.insurance_type.as_deref(), Some("Delta Dental"));
        let item = &out.data[0];
        assert_eq!(
            item.patient,
            Patient {
                name: Some("Maria Gonzalez".into()),
                phone: Some("555-234-8812".into()),
                email: Some("maria.gonzalez@example.com".into()),
                date_of_birth: Some("1986-03-14".into()),
                additional_spellings: vec!["Gonzalez".into()],
            }
        );
        let a = &item.appointment;
        assert_eq!(a.patient_type, Some("New Patient"));
        assert_eq!(a.visit_reasons, ["cleaning", "tooth pain"]);
        assert_eq!(a.requested_date.as_deref(), Some("Tuesday"));
        assert_eq!(a.requested_time.as_deref(), Some("10:30 AM"));
        assert!(a.booked);
        assert_eq!(a.provider.as_deref(), Some("Dr. Patel"));
        assert!(item.insurance.mentioned);
    }

    #[test]
    fn existing_patient_with_changed_insurance() {
        let out = run("dental_existing_checkup.txt");
        assert_eq!(out.answered_by.as_deref(), Some("Emma"));
        assert_eq!(out.insurance_type.as_deref(), Some("Aetna"));
        let item = &out.data[0];
        assert_eq!(item.patient.name.as_deref(), Some("Thomas Wright"));
        assert_eq!(item.patient.date_of_birth.as_deref(), Some("1968-11-23"));
        assert_eq!(item.patient.email.as_deref(), Some("thomas.wright@example.org"));
        assert_eq!(item.appointment.patient_type, Some("Existing Patient"));
        assert_eq!(item.appointment.requested_date.as_deref(), Some("Friday the 20th"));
        assert_eq!(item.appointment.requested_time.as_deref(), Some("1:30 PM"));
        assert_eq!(item.insurance.carriers, ["Aetna", "MetLife"]);
    }

    #[test]
    fn emergency_self_pay() {
        let out = run("dental_emergency_booked.txt");
        let item = &out.data[0];
        assert_eq!(item.patient.name.as_deref(), Some("Aisha Rahman"));
        assert_eq!(item.patient.phone.as_deref(), Some("555-876-1234"));
        assert_eq!(item.patient.date_of_birth.as_deref(), Some("1992-06-30"));
        assert_eq!(item.appointment.patient_type, Some("New Patient"));
        assert!(item.appointment.visit_reasons.contains(&"tooth pain"));
        assert_eq!(item.appointment.requested_date.as_deref(), Some("today"));
        assert_eq!(item.appointment.requested_time.as_deref(), Some("3:45 PM"));
        assert_eq!(out.insurance_type.as_deref(), Some("Self Pay"));
    }

    #[test]
    fn nothing_booked_on_a_missed_opportunity() {
        let out = run("dental_missed_opportunity.txt");
        let a = &out.data[0].appointment;
        assert!(!a.booked);
        assert_eq!(a.patient_type, Some("New Patient"));
        assert_eq!(a.visit_reasons, ["chipped tooth"]);
        assert_eq!(out.data[0].patient.name, None);
    }
}
