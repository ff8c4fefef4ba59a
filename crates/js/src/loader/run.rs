//! A load itself, on its own thread: QuickJS runs the file and its factories, the native
//! tier compiles what it can, and the patch is built.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use flux_engine::{Footprint, Patch, PatchSignal, Signal, Tier, MAX_BLOCK};
use flux_jit::analyze::{instrument_with, Options};
use flux_jit::{compile, NativeSignal, Source, Target};
use rquickjs::{Context, Function, Object, Runtime, Value};

use super::*;
use crate::capture::native_requests;
use crate::cartridge::{caught_to_message, Cartridge, JsSignal, Locator, Watchdog};
use crate::diag::{Diagnostic, Location};
use crate::hooks::Hooks;
use crate::library::{library, LIBRARY_NAME};
use crate::modules::{evaluate, is_module, FileLoader, FileResolver, Imports, Tagging};

impl Loader {
    /// Runs the file on a new QuickJS runtime over this loader's state memory, compiles
    /// what the native tier takes and builds the patch (on the load thread).
    pub(super) fn load_here(
        &mut self,
        name: &str,
        source: &str,
        started: Instant,
        running: &[String],
    ) -> Result<Loaded, Diagnostic> {
        let fail = |message: String| Diagnostic {
            location: Location {
                file: name.to_owned(),
                line: 1,
                col: 1,
            },
            message,
        };
        let runtime = Runtime::new().map_err(|e| fail(format!("cannot start QuickJS: {e}")))?;
        runtime.set_memory_limit(self.options.memory_limit);
        runtime.set_max_stack_size(1 << 20);
        let watchdog = Arc::new(Watchdog::default());
        let dog = watchdog.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || dog.expired())));
        let imports = Imports::new(name, source, self.options.imports_anywhere);
        self.last_imports = Some(imports.clone());
        runtime.set_loader(FileResolver(imports.clone()), FileLoader(imports.clone()));
        let context =
            Context::full(&runtime).map_err(|e| fail(format!("cannot start QuickJS: {e}")))?;

        let is_module = is_module(source);
        // Tag the functions for the native tier and name the calls that make units. The
        // library's functions have the first tag ids.
        let lib = library();
        let ctors: Vec<&str> = lib.ctors.iter().map(String::as_str).collect();
        let tagged = instrument_with(
            source,
            is_module,
            &Options {
                id_base: lib.sites.len(),
                source: 1,
                unit_ctors: &ctors,
            },
        );
        let module_positions = Arc::new(Mutex::new(HashMap::new()));
        // Modules are tagged on every tier, as the file is: their units are named too.
        if let Some(t) = &tagged {
            imports.tag_modules(Tagging {
                next_id: lib.sites.len() + t.functions.len(),
                ctors: lib.ctors.clone(),
                modules: Vec::new(),
                positions: module_positions.clone(),
            });
        }
        let locator = Arc::new(Locator {
            file: name.to_owned(),
            positions: tagged.as_ref().map(|t| t.positions.clone()),
            modules: module_positions,
        });
        let run_source = tagged.as_ref().map_or(source, |t| t.source.as_str());
        let mut sites = vec![String::new(); lib.sites.len()];
        if let Some(t) = &tagged {
            sites.extend(t.functions.iter().map(|f| {
                f.flux_call
                    .map_or_else(String::new, |(l, c)| format!("{name}:{l}:{c}"))
            }));
        }
        let units = Arc::new(Mutex::new(Vec::new()));
        let sample_uses = Arc::new(Mutex::new(Vec::new()));
        let hooks = Hooks {
            state: self.state.clone(),
            alloc: self.alloc.clone(),
            log_tx: self.log_tx.clone(),
            logs_dropped: self.logs_dropped.clone(),
            out_len: MAX_BLOCK * self.options.channels,
            sites,
            running: running.to_vec(),
            units: units.clone(),
            sample_rate: self.options.sample_rate,
            seed: self.options.seed,
            library: crate::hooks::names_library(source),
            imports: imports.clone(),
            samples: self.samples.clone(),
            sample_uses: sample_uses.clone(),
            trial: self.twin,
        };
        let (entries, requests, actions, globals, updates, value) =
            context.with(|ctx| -> Result<_, Diagnostic> {
                hooks
                    .install(&ctx)
                    .map_err(|e| fail(format!("cannot set up the Flux API: {e}")))?;
                watchdog.arm(self.options.load_time_limit);
                let run = evaluate(&ctx, name, run_source, is_module);
                let fired = watchdog.disarm();
                let value = run.map_err(|caught| {
                    // A refused import names itself and its place.
                    if let Some(refused) = imports.take_error() {
                        return refused;
                    }
                    let (location, message) = caught_to_message(&ctx, caught, &locator, &watchdog);
                    // A thrown value with no place of its own: the flux() whose factory threw.
                    let location = location.or_else(|| {
                        let flux: Object = ctx.globals().get("__flux").ok()?;
                        let at: Function = flux.get("failedAt").ok()?;
                        Location::parse(&at.call::<_, String>(()).ok()?)
                    });
                    // QuickJS gives an invalid regular expression no place: find it.
                    let location = location.or_else(|| {
                        if !message.starts_with("SyntaxError") {
                            return None;
                        }
                        let (line, col, _) = flux_jit::analyze::bad_regex(source, is_module)?;
                        Some(Location {
                            file: name.to_owned(),
                            line,
                            col,
                        })
                    });
                    let message = if fired {
                        format!(
                            "the file ran longer than {} ms while loading (an endless loop?)",
                            self.options.load_time_limit.as_millis()
                        )
                    } else {
                        message
                    };
                    // QuickJS names no place for where it stopped: the file's only loop
                    // outside functions, when it has one, is the likely one.
                    let location = match (fired, location) {
                        (true, at) if at.as_ref().is_none_or(|l| (l.line, l.col) == (1, 1)) => {
                            flux_jit::analyze::only_top_level_loop(source, is_module)
                                .map(|(line, col)| Location {
                                    file: name.to_owned(),
                                    line,
                                    col,
                                })
                                .or(at)
                        }
                        (_, at) => at,
                    };
                    Diagnostic {
                        location: location.unwrap_or_else(|| Location {
                            file: name.to_owned(),
                            line: 1,
                            col: 1,
                        }),
                        message,
                    }
                })?;
                let api = || -> rquickjs::Result<(Object<'_>, Function<'_>)> {
                    let flux: Object = ctx.globals().get("__flux")?;
                    let finish: Function = flux.get("finish")?;
                    Ok((flux, finish))
                };
                let (flux, finish) =
                    api().map_err(|e| fail(format!("the Flux API is gone: {e}")))?;
                let value = crate::cartridge::shown(&ctx, &flux, value, &watchdog);
                let entries: Vec<Vec<String>> = finish
                    .call(())
                    .map_err(|e| fail(format!("cannot list the signals: {e}")))?;
                // [id, where flux() was called]
                let entries: Vec<(String, String)> = entries
                    .into_iter()
                    .map(|mut e| {
                        let place = e.pop().unwrap_or_default();
                        (e.pop().unwrap_or_default(), place)
                    })
                    .collect();
                let updates = (0..entries.len())
                    .map(|i| crate::diag::update_place(&flux, i))
                    .collect::<Vec<_>>();
                let actions = read_actions(&flux)
                    .map_err(|e| fail(format!("cannot read the control calls: {e}")))?;
                let (globals, requests) = match &tagged {
                    Some(_) if self.options.tier != TierChoice::Js => native_requests(
                        &flux,
                        entries.iter().map(|e| e.0.as_str()),
                        self.options.seed,
                        &watchdog,
                        self.options
                            .load_time_limit
                            .saturating_sub(started.elapsed()),
                        // Scripts reach the library's functions as globals: those they name.
                        &lib.exports
                            .iter()
                            .filter(|e| !is_module && source.contains(e.as_str()))
                            .cloned()
                            .collect::<Vec<_>>(),
                    ),
                    _ => (Vec::new(), Vec::new()),
                };
                Ok((entries, requests, actions, globals, updates, value))
            })?;

        // Compile what can be compiled; the rest stays on the JavaScript tier.
        let mut native: Vec<Option<Result<NativeSignal, String>>> =
            (0..entries.len()).map(|_| None).collect();
        if let (Some(tagged), false) = (&tagged, self.options.tier == TierChoice::Js) {
            let target = Target {
                channels: self.options.channels,
                state: self.state.clone(),
                file: name.to_owned(),
                globals,
            };
            let mut wanted = Vec::new();
            let mut slots = Vec::new();
            for (i, r) in requests.into_iter().enumerate() {
                match r {
                    Ok(request) => {
                        wanted.push(request);
                        slots.push(i);
                    }
                    Err(reason) => native[i] = Some(Err(reason)),
                }
            }
            let modules = imports.tagged();
            let mut sites = lib.sites.clone();
            sites.extend(tagged.functions.iter().cloned());
            let mut sources = vec![
                Source {
                    name: LIBRARY_NAME,
                    text: &lib.source,
                    module: false,
                },
                Source {
                    name,
                    text: source,
                    module: is_module,
                },
            ];
            for (module, text, t) in &modules {
                sites.extend(t.functions.iter().cloned());
                sources.push(Source {
                    name: module,
                    text,
                    module: true,
                });
            }
            let results = compile(&sources, &sites, &wanted, &target);
            for (i, result) in slots.into_iter().zip(results) {
                native[i] = Some(result.map_err(|u| u.to_string()));
            }
        }

        let cartridge = Arc::new(Cartridge {
            context,
            runtime,
            watchdog,
            update_limit: self.options.update_time_limit,
            sample_rate: self.options.sample_rate,
            channels: self.options.channels,
            locator: locator.clone(),
        });
        let unit_uses = std::mem::take(&mut *units.lock().unwrap_or_else(|e| e.into_inner()));
        let guards = |block| {
            self.alloc
                .lock()
                .map(|a| a.guards_of(block))
                .unwrap_or_default()
        };
        let mut signals = Vec::with_capacity(entries.len());
        let mut infos = Vec::with_capacity(entries.len());
        for (index, (((id, place), native), update)) in
            entries.into_iter().zip(native).zip(updates).enumerate()
        {
            let block = self
                .block_of(&id)
                .ok_or_else(|| fail(format!("signal '{id}' has no state block")))?;
            // The prelude names the `flux(` the parser found (already in the user's
            // coordinates), or else a stack frame of the tagged source.
            let parsed_site = tagged.as_ref().is_some_and(|t| {
                t.functions.iter().any(|f| {
                    f.flux_call
                        .is_some_and(|(l, c)| place == format!("{name}:{l}:{c}"))
                })
            });
            let location =
                Location::parse(&place).map(|l| if parsed_site { l } else { locator.map(l) });
            let (code, tier, reason): (Box<dyn Signal>, Tier, Option<String>) = match native {
                Some(Ok(kernel)) => (Box::new(kernel), Tier::Native, None),
                other => {
                    let reason = match other {
                        Some(Err(reason)) => Some(reason),
                        _ => Some("the JavaScript tier was asked for".to_owned()),
                    };
                    if self.options.tier == TierChoice::Native {
                        return Err(Diagnostic {
                            location: location.unwrap_or_else(|| fail(String::new()).location),
                            message: format!(
                                "signal '{id}' cannot run on the native tier: {}",
                                reason.unwrap_or_default()
                            ),
                        });
                    }
                    // Faults without a place of their own (NaN) name the `update`.
                    let update = update
                        .as_deref()
                        .and_then(Location::parse)
                        .map(|l| locator.map(l).to_string());
                    let js = Box::new(JsSignal {
                        cartridge: cartridge.clone(),
                        index,
                        location: update,
                    });
                    (js, Tier::Js, reason)
                }
            };
            infos.push(SignalInfo {
                id: id.clone(),
                location,
                block,
                tier,
                reason,
            });
            let footprint = Footprint {
                units: unit_uses
                    .iter()
                    .filter(|u| u.signal == id && !u.big)
                    .map(|u| u.block)
                    .collect(),
                guards: guards(block),
            };
            signals.push(PatchSignal::with_footprint(id, block, footprint, code));
        }
        let mut report = UnitReport::default();
        let mut names = BTreeSet::new();
        for u in &unit_uses {
            let name = unit_name(&u.key);
            if names.insert(name.clone()) {
                if u.new {
                    report.made.push(name);
                } else {
                    report.kept.push(name);
                }
            }
        }
        report.kept.sort();
        report.made.sort();
        if running.is_empty() {
            if let Some(before) = self.units.insert(name.to_owned(), names.clone()) {
                report.dropped = before.difference(&names).cloned().collect();
            }
        }
        // Who holds which sound now: every signal this load made (none: it holds none),
        // and the file's top level.
        let uses = sample_uses.lock().map(|u| u.clone()).unwrap_or_default();
        let mut holders: Vec<String> = infos.iter().map(|s| s.id.clone()).collect();
        holders.push(String::new());
        for holder in holders {
            let sounds: BTreeSet<String> = uses
                .iter()
                .filter(|(signal, _)| *signal == holder)
                .map(|(_, key)| key.clone())
                .collect();
            let top = holder.is_empty();
            let user = if top { super::top_level(name) } else { holder };
            if top && !running.is_empty() {
                // Sent code runs its top level beside the file's: it adds, never takes
                // away what the file's top level placed.
                self.sample_users.entry(user).or_default().extend(sounds);
            } else if sounds.is_empty() {
                self.sample_users.remove(&user);
            } else {
                self.sample_users.insert(user, sounds);
            }
        }
        Ok(Loaded {
            patch: Patch::new(signals),
            actions,
            signals: infos,
            elapsed: started.elapsed(),
            units: report,
            imports: imports.files(),
            value,
            cartridge: Some(cartridge),
        })
    }
}

/// The live-control calls the code made, from the prelude's list.
fn read_actions(flux: &Object<'_>) -> rquickjs::Result<Vec<Action>> {
    let list: Function = flux.get("actions")?;
    let raw: Vec<(String, String, f64, f64)> = list
        .call::<_, Vec<Vec<Value>>>(())?
        .into_iter()
        .map(|a| {
            let kind = a
                .first()
                .and_then(|v| v.as_string())
                .and_then(|s| s.to_string().ok());
            let id = a
                .get(1)
                .and_then(|v| v.as_string())
                .and_then(|s| s.to_string().ok());
            let x = a.get(2).and_then(Value::as_number);
            let y = a.get(3).and_then(Value::as_number);
            (
                kind.unwrap_or_default(),
                id.unwrap_or_default(),
                x.unwrap_or(-1.0),
                y.unwrap_or(-1.0),
            )
        })
        .collect();
    Ok(raw
        .into_iter()
        .filter_map(|(kind, id, x, y)| {
            let fade = (x >= 0.0).then_some(x);
            Some(match kind.as_str() {
                "stop" => Action::Stop(id, fade),
                "mute" => Action::Mute(id, fade),
                "unmute" => Action::Unmute(id, fade),
                "solo" => Action::Solo(id, fade),
                "unsolo" => Action::Unsolo(fade),
                "clear" => Action::Clear(fade),
                "gain" => Action::Gain(x),
                "fade" => Action::Fade(id, x),
                "tempo" => Action::Tempo(x, (y >= 0.0).then_some(y)),
                _ => return None,
            })
        })
        .collect())
}
