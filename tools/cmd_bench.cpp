// latentkit bench: speed measurements (never timed tests). One file per subcommand: bench_*.cpp.
#include "bench.h"
#include "common.h"

namespace latentkit::tools {

void register_bench(CLI::App& app) {
    auto* bench = app.add_subcommand("bench", "Benchmarks");
    bench->require_subcommand(1);
    auto o = std::make_shared<Opts>();
    auto* gen = bench->add_subcommand("generate", "Time mapping + synthesis (ms/image, images/s)");
    add_model_option(gen, o->model, "Model file or URL");
    gen->add_option("--random", o->random_resolution, "Instead of a model: random weights at this resolution with paper256 widths");
    add_enum_option(gen, "--arch", o->arch, "With --random: stylegan2 (train --cfg paper256 widths), stylegan3-t or stylegan3-r (ffhqu-256 widths)");
    gen->add_option("--batch", o->batch, "Batch size")->check(above(0));
    gen->add_option("--iters", o->iters, "Timed iterations")->check(above(0));
    gen->add_option("--warmup", o->warmup, "Untimed warm-up iterations")->check(at_least(0));
    add_device_option(gen, o->device);
    gen->add_flag("--compare", o->compare, "Time the reference and the fast implementation in turn and print the speed-up");
    gen->callback([o]() { bench_generate(*o); });

    auto mo = std::make_shared<Opts>();
    auto frames = std::make_shared<int>(120);
    auto* morph = bench->add_subcommand("morph", "Time a morph: generation only, and generation + H.264 encoding (frames/s)");
    add_model_option(morph, mo->model, "Model file or URL");
    morph->add_option("--random", mo->random_resolution, "Instead of a model: random weights at this resolution with paper256 widths");
    morph->add_option("--frames", *frames, "Frames to render")->check(at_least(2));
    morph->add_option("--batch", mo->batch, "Batch size")->check(above(0));
    add_device_option(morph, mo->device);
    morph->callback([mo, frames]() { bench_morph(*mo, *frames); });

    auto po = std::make_shared<Opts>();
    auto pp = std::make_shared<ProjectOpts>();
    auto* proj = bench->add_subcommand("project", "Time projection steps (steps/s, peak memory) and measure reconstruction quality");
    add_model_option(proj, po->model, "Model file or URL");
    proj->add_option("--random", po->random_resolution, "Instead of a model: random weights at this resolution with paper256 widths");
    proj->add_option("--steps", pp->steps, "Timed steps (the first two are not counted)")->check(at_least(3));
    proj->add_option("--targets", pp->targets, "Self-generated targets (seeds 0..N-1) projected together")->check(above(0));
    proj->add_option("--space", pp->space, "w or w+")->check(CLI::IsMember({"w", "w+"}));
    proj->add_option("--loss", pp->losses, "lpips, discriminator and/or pixel (=WEIGHT)")->delimiter(',');
    proj->add_option("--vgg", pp->vgg, "TorchScript VGG16 for LPIPS (the reference's vgg16.pt)");
    proj->add_option("--quality-steps", pp->quality_steps, "Also run a full projection of this many steps and report PSNR / LPIPS")->check(at_least(0));
    proj->add_option("--w-avg-samples", pp->w_avg_samples, "z samples for the W mean and spread");
    add_device_option(proj, po->device);
    proj->add_flag("--compare", pp->compare, "Run the projection with the reference, then the fast implementation, and print the speed-up");
    proj->callback([po, pp]() { bench_project(*po, *pp); });

    auto dopt = std::make_shared<Opts>();
    auto dd = std::make_shared<DirectionsOpts>();
    auto* dirs = bench->add_subcommand("directions", "Time direction fitting (ridge, logistic, SVM) and PCA of sampled W");
    add_model_option(dirs, dopt->model, "Model file or URL");
    dirs->add_option("--random", dopt->random_resolution, "Instead of a model: random weights at this resolution with paper256 widths");
    dirs->add_option("--samples", dd->samples, "Latents for the fits")->check(at_least(100));
    dirs->add_option("--pca-samples", dd->pca_samples, "Latents for the PCA")->check(at_least(2));
    dirs->add_option("--batch", dd->batch, "Latents mapped per batch")->check(above(0));
    add_device_option(dirs, dopt->device);
    dirs->callback([dopt, dd]() { bench_directions(*dopt, *dd); });

    auto topt = std::make_shared<Opts>();
    auto tb = std::make_shared<TrainBenchOpts>();
    auto* tr = bench->add_subcommand("train", "Time training minibatches on random images (s/kimg, peak memory)");
    tr->add_option("--res", tb->res, "Resolution");
    add_enum_option(tr, "--cfg", tb->cfg, "Preset");
    tr->add_option("--batch", tb->batch, "Total batch (default: the preset's)");
    tr->add_option("--batch-gpu", tb->batch_gpu, "Images per forward pass");
    tr->add_option("--iters", tb->iters, "Timed minibatches")->check(above(0));
    tr->add_option("--warmup", tb->warmup, "Untimed minibatches first")->check(above(0));
    add_device_option(tr, topt->device);
    tr->add_flag("--compare", tb->compare, "Train with the reference, then the fast implementation, and print the speed-up");
    tr->callback([topt, tb]() { bench_train(*topt, *tb); });

    auto aopt = std::make_shared<Opts>();
    auto ab = std::make_shared<AudioBenchOpts>();
    auto* au = bench->add_subcommand("audio", "Time audio analysis (s per minute) and a morph with audio against one without");
    add_model_option(au, aopt->model, "Model file or URL");
    au->add_option("--random", aopt->random_resolution, "Instead of a model: random weights at this resolution with paper256 widths");
    au->add_option("--audio", ab->audio, "A sound file to analyse (default: a synthetic minute of kick, hi-hat and bass)");
    au->add_option("--frames", ab->frames, "Frames of each morph")->check(at_least(4));
    au->add_option("--fps", ab->fps, "Video frames per second")->check(above(0));
    au->add_option("--batch", aopt->batch, "Batch size")->check(above(0));
    add_device_option(au, aopt->device);
    au->callback([aopt, ab]() { bench_audio(*aopt, *ab); });
}

}  // namespace latentkit::tools
