// latentkit morph: videos that travel through latent space between keyframes.
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

#include "common.h"
#include "latentkit/error.h"
#include "latentkit/audio_morph.h"
#include "latentkit/directions.h"
#include "latentkit/editing.h"
#include "latentkit/interpolate.h"
#include "latentkit/io/audio.h"
#include "latentkit/io/image.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/io/video.h"
#include "latentkit/latent.h"
#include "latentkit/log.h"
#include "latentkit/morph.h"
#include "latentkit/networks.h"
#include "latentkit/stop.h"
#include "progress_bar.h"
#if LATENTKIT_HAVE_REPLAY
#include "morph_replay.h"
#endif

namespace latentkit::tools {
namespace {

struct Opts {
    std::string model, seeds, space, grid, layers, device = "cpu", out;
    std::string preset = "medium";
    std::vector<std::string> w_files;
    std::string audio, audio_map, directions, replay;
    AudioPreset audio_preset = AudioPreset::pulse;
    double start = 0, duration = -1;
    int fps = 30, crf = -1, size = 0;
    io::ResizeFilter filter = io::ResizeFilter::automatic;
    MorphSpec spec;  // the options that are its fields set them directly
};

// The sound, its features at the video's rate, and the mapping's controls per frame.
struct AudioPlan {
    std::shared_ptr<io::AudioClip> clip;
    AudioMap map;
    std::vector<AudioControl> controls;
};

AudioPlan plan_audio(const Opts& o) {
    if (!o.audio_map.empty() && option_given("--audio-preset")) throw ArgumentError("give --audio-map or --audio-preset, not both");
    AudioPlan plan;
    plan.map = !o.audio_map.empty() ? load_audio_map(o.audio_map) : audio_map_preset(o.audio_preset);
    plan.clip = std::make_shared<io::AudioClip>(io::decode_audio(o.audio, o.start, o.duration));
    const AudioFeatures features = io::analyse_audio(*plan.clip, o.fps);
    // the video lasts as long as the sound, to the nearest frame
    AudioFeatures used = features;
    used.frames.resize(static_cast<size_t>(std::max<int64_t>(1, std::llround(plan.clip->seconds() * o.fps))), features.frames.empty() ? AudioFrame{} : features.frames.back());
    plan.controls = audio_controls(plan.map, used);
    int beats = 0, hits = 0;
    for (const auto& f : used.frames) {
        beats += f[static_cast<size_t>(AudioFeature::beat)] > 0;
        hits += f[static_cast<size_t>(AudioFeature::percussive)] > 0;
    }
    log_info(fmt::format("{}: {:.2f} s from {:.2f} s, tempo {:.0f} bpm, {} beats, {} percussive onsets", o.audio, plan.clip->seconds(), o.start,
                         features.tempo_bpm, beats, hits));
    return plan;
}

std::vector<Direction> audio_directions(const Opts& o, const Model& model) {
    if (o.directions.empty()) return {};
    auto G = model.generator();
    return load_direction_ref(parse_direction_ref(o.directions), G->config.w_dim, model_fingerprint(*G)).directions;
}

// Renders every frame of `renderer` (MorphRenderer or AudioMorphRenderer) into `sink`, tiled by `grid`.
template <class R>
void write_frames(R& renderer, io::FrameSink& sink, const GridSize& grid, int res, const Opts& o) {
    const int cells = grid.cols * grid.rows;
    ProgressBar bar("morph", renderer.frame_count(), "frames");
    for (int64_t f = 0; f < renderer.frame_count();) {
        if (stop_requested()) throw CancelledError(fmt::format("morph interrupted (frame {} of {}; {} was not written)", f, renderer.frame_count(), o.out));
        const int64_t n = std::min<int64_t>(renderer.frames_per_batch(), renderer.frame_count() - f);
        const std::vector<Image8> images = io::images_from_batch(renderer.render(f, n));
        for (int64_t k = 0; k < n; ++k) {
            std::vector<Image8> frame_cells(images.begin() + k * cells, images.begin() + (k + 1) * cells);
            for (auto& c : frame_cells) {
                c = io::convert_channels(c, 3);
                if (c.width != res) c = io::resize_image(c, res, res, o.filter);
            }
            sink.write(io::tile_images(frame_cells, grid.cols, grid.rows));
        }
        f += n;
        bar.update(f);
    }
    sink.finish();
    bar.finish();
}

void replay(const Opts& o) {
    for (const char* other : {"--seeds", "--w", "--audio", "--grid", "--frames", "--kind"})
        if (option_given(other)) throw ArgumentError(fmt::format("--replay renders what was recorded: leave out {}", other));
#if LATENTKIT_HAVE_REPLAY
    ReplayJob job;
    job.recording = o.replay;
    job.model = o.model;
    job.device = device_from_name(o.device).str();
    job.out = o.out;
    job.size = o.size;
    job.filter = o.filter;
    job.video.fps = o.fps;
    job.video.crf = o.crf;
    job.video.preset = o.preset;
    replay_recording(job);
#else
    throw Error("this build of latentkit has no viewer core: --replay is not available");
#endif
}

void run(const Opts& o) {
    if (!o.replay.empty()) return replay(o);
    MorphSpec spec = o.spec;
    spec.space_z = o.space.empty() ? spec.path.kind == PathKind::spherical : o.space == "z";
    if (!o.space.empty() && o.space != "z" && o.space != "w") throw ArgumentError("--space " + o.space + ": expected z or w");
    if (spec.space_z && !o.w_files.empty()) throw ArgumentError("--w latents are in W: use --space w");
    if (o.audio.empty() && (!o.audio_map.empty() || option_given("--audio-preset") || option_given("--start") || option_given("--duration") || !o.directions.empty()))
        throw ArgumentError("--audio-map, --audio-preset, --start, --duration and --directions go with --audio SONG");
    const GridSize grid = parse_grid(o.grid);
    spec.cells = grid.cols * grid.rows;
    if (!o.seeds.empty()) spec.render.seeds = parse_seeds(o.seeds);
    if (spec.render.seeds.empty() && o.w_files.empty()) throw ArgumentError("give keyframes with --seeds and/or --w");
    const torch::Device device = device_from_name(o.device);

    const Model model = load_model_arg(o.model);
    auto G = model.generator();
    if (!o.layers.empty()) spec.layers = parse_layers(o.layers, G->config.num_ws());
    check_render_options(spec.render, G->config);
    for (const auto& f : o.w_files) spec.w_keys.push_back(read_latents(f, G->config));
    const std::vector<Direction> directions = audio_directions(o, model);
    AudioPlan audio;
    if (!o.audio.empty()) audio = plan_audio(o);
    G->to(device);
    G->eval();

    io::VideoOptions vo;
    vo.fps = o.fps;
    vo.crf = o.crf;
    vo.preset = o.preset;
    if (audio.clip && io::is_frame_folder(o.out)) log_warn(o.out + ": a folder of frames holds no sound: add " + o.audio + " in your editor");
    else vo.audio = audio.clip;
    const int res = o.size > 0 ? o.size : G->config.img_resolution;
    int64_t frames = 0;
    if (audio.clip) {
        AudioMorphRenderer renderer(G, spec, audio.map, audio.controls, directions);
        for (const auto& note : renderer.notes()) log_info(note);
        auto sink = io::make_async(io::open_frame_sink(o.out, res * grid.cols, res * grid.rows, vo));
        write_frames(renderer, *sink, grid, res, o);
        frames = renderer.frame_count();
    } else {
        MorphRenderer renderer(G, spec);
        auto sink = io::make_async(io::open_frame_sink(o.out, res * grid.cols, res * grid.rows, vo));
        write_frames(renderer, *sink, grid, res, o);
        frames = renderer.frame_count();
    }
    log_info(fmt::format("wrote {} ({} frames, {}x{}, {} fps{})", o.out, frames, res * grid.cols, res * grid.rows, o.fps, audio.clip ? ", with sound" : ""));
}
}  // namespace

void register_morph(CLI::App& app) {
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("morph", "Render a video that morphs between keyframes (seeds or latents)");
    add_model_option(cmd, o->model);
    add_seeds_option(cmd, o->seeds, "Keyframe seeds, e.g. 1,2,3 (with --grid: split evenly between the cells)");
    cmd->add_option("--w", o->w_files, "Keyframe latents (.npz with 'w' [N, num_ws, w_dim], e.g. projected_w.npz), after the seeds");
    cmd->add_option("--frames", o->spec.path.frames_per_transition, "Frames per transition")->check(above(0));
    add_enum_option(cmd, "--kind", o->spec.path.kind, "Interpolation: lerp, slerp or cubic (smooth curve through all keyframes)");
    cmd->add_option("--space", o->space, "Interpolate in z or w (default: z for slerp, else w)");
    add_enum_option(cmd, "--easing", o->spec.path.easing, "Timing in each transition: linear or ease-in-out");
    cmd->add_flag("--loop", o->spec.path.loop, "Return from the last keyframe to the first (a seamless loop)");
    cmd->add_option("--grid", o->grid, "COLSxROWS grid of independent morphs in one video");
    add_trunc_option(cmd, o->spec.render.psi, "Truncation psi (1 = none)");
    cmd->add_option("--layers", o->layers, "Only these ws move (e.g. 0-5); the others stay at the first keyframe");
    add_render_options(cmd, o->spec.render, kTruncCutoff | kNoiseMode | kNoiseSeed | kClass | kTransform);
    cmd->add_flag("--noise-loop", o->spec.loop_noise, "Noise that moves smoothly and loops with the video (from --noise-seed)");
    cmd->add_option("--size", o->size, "Pixels per cell side, resampled from the model's resolution (default: that resolution)")
        ->check(CLI::Range(4, 4096));
    add_enum_option(cmd, "--filter", o->filter, "Resampling filter for --size (auto: area down, Lanczos up)");
    cmd->add_option("--fps", o->fps, "Frames per second");
    cmd->add_option("--crf", o->crf, "Encoder quality, lower is better (default 18 for H.264, 32 for VP9)");
    cmd->add_option("--preset", o->preset, "x264 preset: ultrafast ... veryslow");
    cmd->add_option("--batch", o->spec.batch, "Images generated per batch")->check(above(0));
    cmd->add_option("--audio", o->audio, "Set the morph to this sound (any file FFmpeg reads): the video lasts as long, follows it, and carries it");
    cmd->add_option("--audio-map", o->audio_map, "How the sound moves the morph (JSON; see the README)");
    add_enum_option(cmd, "--audio-preset", o->audio_preset, "A bundled mapping: pulse, motion or beats (see the README)");
    cmd->add_option("--start", o->start, "Seconds into --audio where the video starts")->check(CLI::NonNegativeNumber);
    cmd->add_option("--duration", o->duration, "Seconds of --audio to use (default: to its end)")->check(above(0));
    cmd->add_option("--replay", o->replay, "Render a recording of the viewer's live session (with its sound) instead of keyframes");
    cmd->add_option("--directions", o->directions, "Directions the audio map names (FILE or FILE#NAME)");
    add_device_option(cmd, o->device);
    cmd->add_option("--out,-o", o->out, "Output: .mp4, .mkv, .mov, .webm, .gif, or a folder/ of PNG frames")->required();
    cmd->callback([o]() { run(*o); });
}

}  // namespace latentkit::tools
