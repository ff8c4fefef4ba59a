//! The Cranelift JIT module and the runtime functions kernels may call.

use std::collections::HashMap;

use cranelift_codegen::ir::{types, AbiParam};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module};

use super::lower::Lower;
use super::{Request, Shared, Unsupported};
use crate::kernel;

/// The Cranelift JIT module and the runtime functions kernels may call.
pub(super) struct Jit {
    pub(super) module: JITModule,
    ctx: cranelift_codegen::Context,
    fctx: FunctionBuilderContext,
    imports: HashMap<&'static str, FuncId>,
}

pub(super) type F1 = extern "C" fn(f64) -> f64;
pub(super) type F2 = extern "C" fn(f64, f64) -> f64;

pub(super) const MATH_1: &[(&str, &str, F1)] = &[
    ("sin", "flux_sin", kernel::js_sin),
    ("cos", "flux_cos", kernel::js_cos),
    ("tan", "flux_tan", kernel::js_tan),
    ("asin", "flux_asin", kernel::js_asin),
    ("acos", "flux_acos", kernel::js_acos),
    ("atan", "flux_atan", kernel::js_atan),
    ("sinh", "flux_sinh", kernel::js_sinh),
    ("cosh", "flux_cosh", kernel::js_cosh),
    ("tanh", "flux_tanh", kernel::js_tanh),
    ("asinh", "flux_asinh", kernel::js_asinh),
    ("acosh", "flux_acosh", kernel::js_acosh),
    ("atanh", "flux_atanh", kernel::js_atanh),
    ("exp", "flux_exp", kernel::js_exp),
    ("expm1", "flux_expm1", kernel::js_exp_m1),
    ("log", "flux_log", kernel::js_ln),
    ("log1p", "flux_log1p", kernel::js_ln_1p),
    ("log2", "flux_log2", kernel::js_log2),
    ("log10", "flux_log10", kernel::js_log10),
    ("cbrt", "flux_cbrt", kernel::js_cbrt),
    ("round", "flux_round", kernel::js_round),
    ("sign", "flux_sign", kernel::js_sign),
];

pub(super) const MATH_2: &[(&str, &str, F2)] = &[
    ("atan2", "flux_atan2", kernel::js_atan2),
    ("hypot", "flux_hypot", kernel::js_hypot),
    ("pow", "flux_pow", kernel::js_pow),
    ("%", "flux_fmod", kernel::js_fmod),
];

pub(super) const MATH_CONSTANTS: &[(&str, f64)] = &[
    ("E", std::f64::consts::E),
    ("LN10", std::f64::consts::LN_10),
    ("LN2", std::f64::consts::LN_2),
    ("LOG2E", std::f64::consts::LOG2_E),
    ("LOG10E", std::f64::consts::LOG10_E),
    ("PI", std::f64::consts::PI),
    ("SQRT1_2", std::f64::consts::FRAC_1_SQRT_2),
    ("SQRT2", std::f64::consts::SQRT_2),
];

impl Jit {
    pub(super) fn new() -> Result<Self, String> {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").map_err(|e| e.to_string())?;
        // The verifier checks the compiler, not the user's code: on in debug builds only.
        let verify = if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        };
        flags
            .set("enable_verifier", verify)
            .map_err(|e| e.to_string())?;
        let isa = cranelift_native::builder()
            .map_err(|e| e.to_string())?
            .finish(settings::Flags::new(flags))
            .map_err(|e| e.to_string())?;
        let mut builder = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
        for (_, symbol, f) in MATH_1 {
            builder.symbol(*symbol, *f as *const u8);
        }
        for (_, symbol, f) in MATH_2 {
            builder.symbol(*symbol, *f as *const u8);
        }
        builder.symbol("flux_to_int32", kernel::js_to_int32 as *const u8);
        builder.symbol("flux_random", kernel::js_random as *const u8);
        builder.symbol("flux_midi_value", kernel::midi_value as *const u8);
        let mut module = JITModule::new(builder);
        let mut imports = HashMap::new();
        let f64t = AbiParam::new(types::F64);
        for (_, symbol, _) in MATH_1 {
            let mut sig = module.make_signature();
            sig.params.push(f64t);
            sig.returns.push(f64t);
            let id = module
                .declare_function(symbol, Linkage::Import, &sig)
                .map_err(|e| e.to_string())?;
            imports.insert(*symbol, id);
        }
        for (_, symbol, _) in MATH_2 {
            let mut sig = module.make_signature();
            sig.params.extend([f64t, f64t]);
            sig.returns.push(f64t);
            let id = module
                .declare_function(symbol, Linkage::Import, &sig)
                .map_err(|e| e.to_string())?;
            imports.insert(*symbol, id);
        }
        let ptr = module.target_config().pointer_type();
        let mut sig = module.make_signature();
        sig.params.push(f64t);
        sig.returns.push(AbiParam::new(types::I32));
        let id = module
            .declare_function("flux_to_int32", Linkage::Import, &sig)
            .map_err(|e| e.to_string())?;
        imports.insert("flux_to_int32", id);
        let mut sig = module.make_signature();
        sig.params.push(AbiParam::new(ptr));
        sig.returns.push(f64t);
        let id = module
            .declare_function("flux_random", Linkage::Import, &sig)
            .map_err(|e| e.to_string())?;
        imports.insert("flux_random", id);
        let mut sig = module.make_signature();
        sig.params.extend([
            AbiParam::new(ptr),
            AbiParam::new(types::I64),
            AbiParam::new(types::I64),
        ]);
        sig.returns.push(f64t);
        let id = module
            .declare_function("flux_midi_value", Linkage::Import, &sig)
            .map_err(|e| e.to_string())?;
        imports.insert("flux_midi_value", id);
        Ok(Self {
            ctx: module.make_context(),
            fctx: FunctionBuilderContext::new(),
            module,
            imports,
        })
    }

    pub(super) fn kernel(
        &mut self,
        shared: &Shared<'_, '_>,
        request: &Request,
        n: usize,
        tables: &mut Vec<Box<[f64]>>,
        param_ranges: &[Option<(f64, f64)>],
    ) -> Result<(FuncId, bool), Unsupported> {
        let ptr = self.module.target_config().pointer_type();
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature.params.push(AbiParam::new(ptr));
        self.ctx
            .func
            .signature
            .returns
            .push(AbiParam::new(types::I32));
        let function = request.function;
        let start = shared.sites.get(function).map_or(0, |s| s.start);
        let node = shared
            .node(function)
            .ok_or_else(|| shared.unsupported(function, start, "update is not a plain function"))?;

        let config = self.module.target_config();
        let mut refs = HashMap::new();
        let reads_clock;
        let failed = {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            for (name, id) in &self.imports {
                let r = self.module.declare_func_in_func(*id, b.func);
                refs.insert(*name, r);
            }
            let mut lower = Lower::start(&mut b, shared, refs, tables, ptr, param_ranges);
            let result = lower.kernel_body(node, request);
            reads_clock = lower.reads_clock();
            match result {
                Ok(()) => {
                    b.seal_all_blocks();
                    b.finalize(config);
                    None
                }
                Err(e) => Some(e),
            }
        };
        if let Some(e) = failed {
            // The half-built function is abandoned; start the next one clean.
            self.fctx = FunctionBuilderContext::new();
            return Err(e);
        }
        let id = self
            .module
            .declare_function(
                &format!("kernel{n}"),
                Linkage::Local,
                &self.ctx.func.signature,
            )
            .map_err(|e| shared.unsupported(function, start, &format!("cannot declare: {e}")))?;
        self.module
            .define_function(id, &mut self.ctx)
            .map_err(|e| shared.unsupported(function, start, &format!("cannot compile: {e:?}")))?;
        Ok((id, reads_clock))
    }
}
